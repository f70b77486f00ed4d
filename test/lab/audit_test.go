package lab

import (
	"strings"
	"testing"
	"time"
)

func TestParseAuditLog(t *testing.T) {
	log := `{"auditID":"1","stage":"ResponseStarted","verb":"watch","user":{"username":"u"},"objectRef":{"resource":"nodeagents"},"requestReceivedTimestamp":"2026-01-01T12:00:00.000100Z"}
{"auditID":"1","stage":"ResponseComplete","verb":"watch","user":{"username":"u"},"objectRef":{"resource":"nodeagents"},"requestReceivedTimestamp":"2026-01-01T12:00:00.000100Z"}
{"auditID":"2","stage":"ResponseComplete","verb":"patch","user":{"username":"u"},"objectRef":{"resource":"nodeagents","subresource":"status"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-01-01T12:00:01.5Z"}
{"auditID":"3","stage":"Respo
{"auditID":"4","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{"username":"u"},"requestReceivedTimestamp":"2026-01-01T12:00:02Z"}
`
	events, skipped, err := ParseAuditLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || skipped != 1 {
		t.Fatalf("%d events, %d skipped; want 3, 1", len(events), skipped)
	}
	if got := events[0].Resource(); got != "nodeagents" || events[0].Stage != "ResponseStarted" {
		t.Errorf("first event %s at stage %s", got, events[0].Stage)
	}
	if got := events[1].Resource(); got != "nodeagents/status" || events[1].ResponseStatus.Code != 200 {
		t.Errorf("second event %s", got)
	}
	if got := events[2].Resource(); got != "/api" {
		t.Errorf("third event %s, want its path", got)
	}
	if want := time.Date(2026, 1, 1, 12, 0, 1, 5e8, time.UTC); !events[1].RequestReceived.Equal(want) {
		t.Errorf("received %v, want %v", events[1].RequestReceived, want)
	}
}

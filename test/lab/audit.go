package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// The audit log (Config.AuditLog): kube-apiserver records every request of Vigil's
// ServiceAccounts (the controller's and the agents') at level Metadata, one JSON line per
// stage, to AuditLogPath. Requests of the lab itself (its admin) are not recorded.

// auditPolicy records the requests of every ServiceAccount in Vigil's namespace: who, when,
// which verb on which resource, with which answer; no bodies.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts:` + VigilNamespace + `"]
- level: None
`

// AuditLogPath is where kube-apiserver writes the audit log of a lab with Config.AuditLog.
func (l *Lab) AuditLogPath() string { return filepath.Join(l.RunDir, "audit.log") }

// auditArgs writes the audit policy and returns kube-apiserver's arguments for the log.
// The log is written synchronously (mode blocking): an event is on disk before its request
// is answered, also when kube-apiserver is killed next.
func (l *Lab) auditArgs() ([]string, error) {
	policy := filepath.Join(l.RunDir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	return []string{
		"--audit-policy-file=" + policy, "--audit-log-path=" + l.AuditLogPath(),
		"--audit-log-format=json", "--audit-log-mode=blocking",
	}, nil
}

// AuditEvent is what the lab reads of one audit.k8s.io/v1 Event.
type AuditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string              `json:"username"`
		Extra    map[string][]string `json:"extra"`
	} `json:"user"`
	SourceIPs []string `json:"sourceIPs"`
	UserAgent string   `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"responseStatus"`
	RequestReceived time.Time `json:"requestReceivedTimestamp"`
	StageTimestamp  time.Time `json:"stageTimestamp"`
}

// Resource is the request's resource with its subresource ("nodeagents/status"), or its
// path when it names none (a discovery request).
func (e *AuditEvent) Resource() string {
	if e.ObjectRef == nil || e.ObjectRef.Resource == "" {
		return e.RequestURI
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// Abandoned reports whether the client had given up the request before kube-apiserver
// handled it (it answers "context canceled"): a request sent while kube-apiserver was
// stopped, read once it went on.
func (e *AuditEvent) Abandoned() bool {
	return e.ResponseStatus != nil && e.ResponseStatus.Code >= 500 && e.ResponseStatus.Message == "context canceled"
}

// ReadAuditLog reads the audit log of the lab: one event per request (its first stage
// recorded, which carries the time the request was received), in the order of the log,
// and how many lines were not events (a line cut short when kube-apiserver was killed).
func (l *Lab) ReadAuditLog() (events []AuditEvent, skipped int, err error) {
	f, err := os.Open(l.AuditLogPath())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !l.auditLog {
			return nil, 0, fmt.Errorf("lab %s has no audit log: bring it up with Config.AuditLog", l.Prefix)
		}
		return nil, 0, err
	}
	defer func() { _ = f.Close() }()
	return ParseAuditLog(f)
}

// ParseAuditLog reads audit events, one JSON object a line, keeping one per request (the
// first of its stages), and counts the lines that are not events.
func ParseAuditLog(r io.Reader) (events []AuditEvent, skipped int, err error) {
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e AuditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.AuditID == "" {
			skipped++
			continue
		}
		if seen[e.AuditID] {
			continue
		}
		seen[e.AuditID] = true
		events = append(events, e)
	}
	return events, skipped, sc.Err()
}

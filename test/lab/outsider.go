package lab

import (
	"encoding/base64"
	"strconv"
	"time"
)

// MemberlistOutsider runs `labhelper memberlist-outsider` in a member's namespace (a node,
// "cp" or "client"): a memberlist member that is not one of Vigil's tries to join the
// member at join with key (nil: in the clear), stays for stay, and reports what happened
// ("joined N" or "join failed: ...", then "members: ..."), which is returned.
func (l *Lab) MemberlistOutsider(member string, key []byte, join string, stay time.Duration) (string, error) {
	m, err := l.member(member)
	if err != nil {
		return "", err
	}
	name := "memberlist-outsider-" + strconv.FormatInt(time.Now().UnixNano(), 10) // a log of its own
	p, err := l.StartProcess(member, name, l.HelperBin, "memberlist-outsider",
		"--bind", m.IPv4.String(), "--key", base64.StdEncoding.EncodeToString(key), "--join", join, "--stay", stay.String())
	if err != nil {
		return "", err
	}
	if err := p.Wait(stay + 30*time.Second); err != nil {
		return p.Log(), err
	}
	return p.Log(), p.Err()
}

package bench

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of a process's CPU times in /proc: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// ProcUsage is what /proc says of one process at one instant.
type ProcUsage struct {
	At  time.Time
	CPU time.Duration // user and system time since the process started
	RSS uint64        // resident set size, bytes
	HWM uint64        // the most it was resident, bytes
}

// ReadProc reads the CPU time and memory of process pid from /proc.
func ReadProc(pid int) (ProcUsage, error) {
	u := ProcUsage{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	if u.CPU, err = ParseStatCPU(string(stat)); err != nil {
		return u, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	u.RSS, u.HWM = ParseStatusMemory(string(status))
	return u, nil
}

// ParseStatCPU returns utime+stime of a /proc/PID/stat line. The command name, in
// parentheses, may hold spaces: fields are counted after its closing parenthesis.
func ParseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state is field 3 of the line, utime 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// ParseStatusMemory returns VmRSS and VmHWM of a /proc/PID/status file, in bytes.
func ParseStatusMemory(status string) (rss, hwm uint64) {
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = n * 1024
		} else {
			hwm = n * 1024
		}
	}
	return rss, hwm
}

// CPUPercent is the share of one core a process used between two readings.
func CPUPercent(from, to ProcUsage) float64 {
	wall := to.At.Sub(from.At)
	if wall <= 0 {
		return 0
	}
	return round1(100 * float64(to.CPU-from.CPU) / float64(wall))
}

// MiB is n bytes in MiB, to one decimal.
func MiB(n uint64) float64 { return round1(float64(n) / (1 << 20)) }

func round1(x float64) float64 { return math.Round(x*10) / 10 }

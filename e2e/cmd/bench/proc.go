package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuSample is a process's CPU time (user+system) at an instant.
type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

// cpuPoll is how often CPU time is sampled: short next to a tick, long enough that reading
// /proc costs nothing noticeable.
const cpuPoll = 20 * time.Millisecond

// cpuSampler records the CPU time of a few processes every cpuPoll, so that afterwards each
// tick can be charged with the CPU spent between its time and the next tick's.
type cpuSampler struct {
	pids     []int
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	samples [][]cpuSample // one series per pid
}

// startCPUSampler samples pids until stop is called. A process that has exited is skipped.
func startCPUSampler(pids ...int) *cpuSampler {
	s := &cpuSampler{pids: pids, quit: make(chan struct{}), done: make(chan struct{}), samples: make([][]cpuSample, len(pids))}
	go s.run()
	return s
}

func (s *cpuSampler) run() {
	defer close(s.done)
	t := time.NewTicker(cpuPoll)
	defer t.Stop()
	for {
		for i, pid := range s.pids {
			if cpu, err := readCPU(pid); err == nil {
				s.mu.Lock()
				s.samples[i] = append(s.samples[i], cpuSample{at: time.Now(), cpu: cpu})
				s.mu.Unlock()
			}
		}
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
	}
}

// stop ends sampling and waits for the sampler; later calls do nothing.
func (s *cpuSampler) stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	<-s.done
}

// series returns the samples of the i-th pid so far.
func (s *cpuSampler) series(i int) []cpuSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cpuSample(nil), s.samples[i]...)
}

// waitSampleAfter waits until the first pid has a sample taken after t, or until exited closes.
func (s *cpuSampler) waitSampleAfter(ctx context.Context, t time.Time, exited <-chan struct{}) error {
	for {
		s.mu.Lock()
		first := s.samples[0]
		ok := len(first) > 0 && first[len(first)-1].at.After(t)
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("macaque exited before its last tick ended")
		case <-time.After(cpuPoll):
		}
	}
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports (the kernel scales to it whatever its own HZ).
const clockTicks = 100

// restTicks is how many tick lengths the control plane's CPU is read over before macaque starts:
// what it spends on its own (controllers still catching up, compaction, kwok), to set beside
// what it spends in macaque's ticks.
const restTicks = 3

// restingCPU returns each pid's CPU time over restTicks tick lengths, scaled to one tick length.
func restingCPU(ctx context.Context, every time.Duration, pids ...int) ([]time.Duration, error) {
	before, err := readCPUs(pids)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(restTicks * every):
	}
	after, err := readCPUs(pids)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(began)
	out := make([]time.Duration, len(pids))
	for i := range pids {
		out[i] = time.Duration(float64(after[i]-before[i]) * float64(every) / float64(elapsed))
	}
	return out, nil
}

// readCPUs returns the user+system CPU time of each process of pids, in their order.
func readCPUs(pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		cpu, err := readCPU(pid)
		if err != nil {
			return nil, err
		}
		out[i] = cpu
	}
	return out, nil
}

// readCPU returns the user+system CPU time of process pid, including exited threads.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a /proc/<pid>/stat line. The
// command name (field 2) may hold spaces and parentheses, so fields are counted after its ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the name", len(fields))
	}
	var total int64
	for _, f := range fields[11:13] { // fields[0] is field 3 (state), so 14 and 15 are at 11 and 12
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat CPU time %q: %w", f, err)
		}
		total += v
	}
	return time.Duration(total) * (time.Second / clockTicks), nil
}

// processName is the command name of pid ("" if it cannot be read).
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readVMHWM returns the process's peak resident set size in bytes.
func readVMHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	return parseVMHWM(b)
}

// parseVMHWM finds "VmHWM:   1234 kB" in a /proc/<pid>/status file.
func parseVMHWM(status []byte) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed VmHWM %q: %w", line, err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmHWM in /proc status")
}

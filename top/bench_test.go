package top

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/sys/unix"

	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/lab"
	"github.com/snapdiag/snapdiag/tui"
)

// benchListeners is how many listeners the refresh benchmark's namespace
// holds.
const benchListeners = 10_000

// BenchmarkRefresh measures one refresh of snapdiag top on a namespace with
// 10,000 listeners (a dump of the listeners and their SYN queues, a read of
// /proc/net/netstat, the model's update and a 160x48 render) against what
// an operator runs each second instead, `ss -ltn; nstat`, taking turns in
// the same loop so both see the same load. It reports both per refresh,
// wall and CPU time, and their ratios (top over ss+nstat):
//
//	sudo go test ./top -run '^$' -bench Refresh -benchtime 20x
func BenchmarkRefresh(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"ss", "nstat"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed", tool)
		}
	}
	l := lab.New(b, lab.Options{})
	th, err := netns.Enter(filepath.Join(lab.NetnsDir, l.Server))
	if err != nil {
		b.Fatal(err)
	}
	defer th.Close()
	var fds []int
	b.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	for range benchListeners {
		fd, err := th.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		fds = append(fds, fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: l.ServerIP.As4()}); err != nil {
			b.Fatal(err)
		}
		if err := unix.Listen(fd, 128); err != nil {
			b.Fatal(err)
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	hist := filepath.Join(b.TempDir(), "nstat.history")

	// The Source reads the namespace through the thread, as top --netns
	// does.
	src := New(collectors.Host{Proc: "/proc", NS: th}, nil)
	m := tui.NewTop(src, tui.TopOptions{})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
	refresh := func() {
		r := src.Read(context.Background())
		if r.ListenersErr != nil || len(r.Listeners) != benchListeners {
			b.Fatalf("read %d listeners (%v), want %d", len(r.Listeners), r.ListenersErr, benchListeners)
		}
		m.Update(tui.TopReadingMsg{Reading: r})
		_ = m.Render()
	}
	// ss and nstat run in the namespace: a child forked from the thread
	// starts in its namespace.
	tools := func() (cpu time.Duration) {
		for _, argv := range [][]string{{"ss", "-ltn"}, {"nstat"}} {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdout, cmd.Stderr = devnull, devnull
			cmd.Env = append(os.Environ(), "NSTAT_HISTORY="+hist)
			if err := cmd.Run(); err != nil {
				b.Fatalf("%v: %v", argv, err)
			}
			cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		return cpu
	}
	// The first refresh looks for the listeners' owners; later ones only
	// dump. nstat's first run writes its history.
	refresh()
	th.Do(func() { tools() })

	var topWall, topCPU, toolWall, toolCPU time.Duration
	runTop := func() {
		start, c0 := time.Now(), processCPU()
		refresh()
		topWall += time.Since(start)
		topCPU += processCPU() - c0
	}
	runTools := func() {
		start := time.Now()
		th.Do(func() { toolCPU += tools() })
		toolWall += time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			runTop()
			runTools()
		} else {
			runTools()
			runTop()
		}
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / n }
	b.ReportMetric(ms(topWall), "top-ms/refresh")
	b.ReportMetric(ms(toolWall), "ss+nstat-ms/refresh")
	b.ReportMetric(ms(topCPU), "top-cpu-ms/refresh")
	b.ReportMetric(ms(toolCPU), "ss+nstat-cpu-ms/refresh")
	b.ReportMetric(float64(topWall)/float64(toolWall), "wall-ratio")
	b.ReportMetric(float64(topCPU)/float64(max(toolCPU, 1)), "cpu-ratio")
	b.Logf("%d listeners: top %.1f ms (%.1f ms CPU), ss -ltn + nstat %.1f ms (%.1f ms CPU) per refresh",
		benchListeners, ms(topWall), ms(topCPU), ms(toolWall), ms(toolCPU))
}

// processCPU is this process's CPU time, user and system, all threads.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Package lab reproduces listen-path incidents on the real kernel, inside
// network namespaces that it creates and removes, for tests (capture tests,
// analyzer fixtures, the watchdog) and for snapdiag selftest.
//
// A Lab is two namespaces joined by a veth pair: a server namespace holding
// 10.211.N.1 and a client namespace holding 10.211.N.2 (the "bad" client,
// which Blackhole cuts off from SYN-ACKs) and 10.211.N.3 (the "good" client),
// plus fd00:5d:N::1, ::2 and ::3 when IPv6 is asked for. Nothing else is
// routed: every packet a lab sends stays on that veth pair, and every
// address a lab method accepts is checked against the lab's own.
//
// Scenarios (SYNFlood, AcceptQueueFull, TimeWaitOverflow, ExhaustPorts,
// HealthyBusy) bring an incident about, wait with a bounded poll until the
// kernel shows the state the doc describes, and return what they did. A test
// then runs the code under test inside the server namespace, as a process
// with Exec or on a thread with Do, and compares with SS, Sockets and
// Counters:
//
//	l := lab.New(t, lab.Options{})
//	flood, err := lab.SYNFlood(l, lab.SYNFloodOpts{Backlog: 16})
//	if err != nil {
//		t.Fatal(err)
//	}
//	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
//	out, err := l.Exec(ctx, l.Server, bin, "capture", "--out", t.TempDir(), "--port", "8080")
//	ss, err := l.SS(ctx, l.Server) // what ss says, to compare with listeners.json
//
// Safety: namespaces are named sdlab-<pid>-<seq>-{srv,cli}; every socket,
// goroutine and process a lab starts is bounded in time and count and is
// ended, by pid, in the test's cleanup, which then deletes the namespaces.
// CleanStale removes namespaces left behind by killed runs. Tests that use a
// lab skip when not run as root.
//
// A program (snapdiag selftest) builds a lab with Open instead of New and
// removes it with Close; it runs the stand-in service from its own binary
// (Options.ServiceCommand, package labsvc) rather than one built with the go
// command, and the package links neither testing nor the test helpers.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Prefix starts the name of every network namespace a lab creates.
const Prefix = "sdlab-"

// BlackholeMAC is the link-layer address Blackhole gives a client in the
// server's neighbour table. The client's veth discards frames sent to it as
// PACKET_OTHERHOST, with no ICMP and no RST: the server's SYN-ACKs vanish and
// the client's handshakes stay half-open on the server.
const BlackholeMAC = "02:de:ad:be:ef:01"

// Link names of the veth pair. Each end is created directly inside its own
// namespace, so the names never meet the host's or another lab's links.
const (
	ServerLink = "sdlab-s"
	ClientLink = "sdlab-c"
)

// NetnsDir is where `ip netns` keeps the bind mounts that name namespaces.
const NetnsDir = "/run/netns"

// SkipMessage is the reason New gives when it skips a test for want of root.
const SkipMessage = "lab: needs root to create network namespaces"

// Recipe bounds, applied by New. Measured on
// 6.18: since 6.5 a SYN_SENT socket may retransmit tcp_syn_retries plus
// tcp_syn_linear_timeouts (4) times (tcp_write_timeout()), so a client whose
// SYN-ACKs are black-holed sends SYNs at 0, 1, 2, 3, 4, 5, 7 and 11 s and
// gives up at about 19 s. Each duplicate SYN re-arms the server's request
// timer (tcp_check_req()), so such a request lives as long as its client
// retries; tcp_synack_retries 2 expires it about 7 s after the client stops.
// Closing the client socket ends its retries at once, which lab cleanup does.
const (
	ClientSynRetries    = 3
	ServerSynackRetries = 2
)

// Options choose what New builds.
type Options struct {
	// IPv6 adds fd00:5d:N::1 to the server and ::2, ::3 to the client, without
	// duplicate address detection. Without it IPv6 is disabled in both
	// namespaces, which keeps their packet samples free of NDP and MLD chatter.
	IPv6 bool
	// Net is N in 10.211.N.0/24 and fd00:5d:N::/64, 1 to 254; 0 picks one no
	// other lab of this process uses. The addresses exist only inside the
	// lab's own namespaces, so two processes that pick the same N do not
	// interfere; N only keeps labs apart in logs and bundles.
	Net int
	// ServiceCommand is the command Service runs (a binary and its leading
	// arguments) for a program that embeds labsvc, such as snapdiag's hidden
	// selftest-service command. Empty, Service builds lab/cmd/labsvc with
	// the go command, which only a test's lab (New) can do.
	ServiceCommand []string
	// ServiceListeners makes the scenarios (SYNFlood, AcceptQueueFull,
	// HealthyBusy) listen from a Service process instead of from this
	// process, as a real service would.
	ServiceListeners bool
}

// Lab is one server namespace and one client namespace joined by a veth pair.
// Its methods are safe for concurrent use.
type Lab struct {
	// Server and Client name the two network namespaces (as `ip netns` does).
	Server, Client string
	// Net is N in the lab's address plan.
	Net int
	// ServerIP is 10.211.N.1, BadIP 10.211.N.2 and GoodIP 10.211.N.3.
	ServerIP, BadIP, GoodIP netip.Addr
	// ServerMAC and ClientMAC are the veth ends' link-layer addresses,
	// 02:5d:NN:00:00:01 and 02:5d:NN:00:00:02 with NN = N in hex.
	ServerMAC, ClientMAC string
	// ServerIP6, BadIP6 and GoodIP6 are fd00:5d:N::1, ::2 and ::3; they are
	// the zero Addr unless Options.IPv6 was set.
	ServerIP6, BadIP6, GoodIP6 netip.Addr

	tb         TB       // nil for a lab from Open
	created    []string // namespaces to delete, in creation order
	svcCmd     []string // Options.ServiceCommand
	inService  bool     // Options.ServiceListeners
	releaseNet func()   // frees Net for another lab of this process
	closeOnce  sync.Once
	closeErr   error

	mu      sync.Mutex
	log     []string
	closers []func()
	closed  bool
	stop    chan struct{} // closed when cleanup starts: background loops end
	svcBin  string        // labsvc, once built
	wg      sync.WaitGroup
}

// Process-wide bookkeeping: namespace sequence numbers and the N values in use
// by this process's labs. Labs are test infrastructure, and a process must not
// hand the same name to two of them.
var (
	seqMu     sync.Mutex
	seq       int
	netInUse  = map[int]bool{}
	staleOnce sync.Once
)

// TB is what a lab needs of a test: *testing.T, *testing.B and testing.TB
// satisfy it. The package does not import testing, so that the snapdiag
// binary, whose self-test runs labs (Open), does not link it.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Failed() bool
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Skipf(format string, args ...any)
}

// New builds a lab for tb and registers its removal with tb.Cleanup. It skips
// tb when not run as root and fails it when the lab cannot be built.
//
// Beyond the veth pair and addresses, New applies the recipe bounds: the
// client namespace's tcp_syn_retries is ClientSynRetries and the server's
// tcp_synack_retries is ServerSynackRetries.
func New(tb TB, opts Options) *Lab {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip(SkipMessage)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skipf("lab: needs iproute2's ip to create network namespaces: %v", err)
	}
	staleOnce.Do(func() {
		removed, err := CleanStale()
		if err != nil {
			tb.Logf("lab: removing stale namespaces: %v", err)
		}
		if len(removed) > 0 {
			tb.Logf("lab: removed stale namespaces %v", removed)
		}
	})
	l, err := open(context.Background(), opts)
	if l != nil {
		l.tb = tb
		tb.Cleanup(func() {
			if err := l.Close(); err != nil {
				tb.Errorf("lab: %v", err)
			}
			if tb.Failed() {
				tb.Logf("lab %s/%s commands:\n%s", l.Server, l.Client, strings.Join(l.Commands(), "\n"))
			}
		})
	}
	if err != nil && l == nil {
		tb.Fatalf("lab: %v", err)
	}
	if err != nil {
		tb.Fatalf("lab: %v\ncommands run:\n%s", err, strings.Join(l.Commands(), "\n"))
	}
	return l
}

// ErrNeedRoot is Open's error when the process is not root: only root may
// create network namespaces.
var ErrNeedRoot = errors.New("lab: needs root to create network namespaces")

// Open builds a lab for a program rather than a test (snapdiag selftest):
// the same namespaces, addresses and recipe bounds as New. The caller must
// call Close, which also ends everything the lab started; on error nothing
// is left behind. Open needs root (ErrNeedRoot) and iproute2's ip.
func Open(opts Options) (*Lab, error) {
	return OpenContext(context.Background(), opts)
}

// OpenContext is Open whose setup stops when ctx ends (a signal, a time
// limit): no further ip command starts, what was made is removed, and the
// error wraps ctx's. Each ip command is bounded by ipTimeout, so without
// ctx a slow setup on a loaded machine could take many times that before a
// signal is looked at. ctx bounds the setup only, not the lab's life.
func OpenContext(ctx context.Context, opts Options) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab: needs iproute2's ip to create network namespaces: %w", err)
	}
	l, err := open(ctx, opts)
	if err != nil {
		if l != nil {
			err = errors.Join(err, l.Close())
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	return l, nil
}

// open picks the lab's subnet and builds it. It returns the lab even when
// setup fails part-way, so that the caller's Close removes what was made.
func open(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Net < 0 || opts.Net > 254 {
		return nil, fmt.Errorf("Options.Net %d is outside 1..254", opts.Net)
	}
	seqMu.Lock()
	seq++
	id := seq
	n := opts.Net
	if n == 0 {
		start := (os.Getpid()+id)%254 + 1
		for i := range 254 {
			c := (start-1+i)%254 + 1
			if !netInUse[c] {
				n = c
				break
			}
		}
	}
	if n == 0 {
		seqMu.Unlock()
		return nil, fmt.Errorf("all 254 subnets are in use by this process")
	}
	netInUse[n] = true
	seqMu.Unlock()

	l := &Lab{
		Server:     fmt.Sprintf("%s%d-%d-srv", Prefix, os.Getpid(), id),
		Client:     fmt.Sprintf("%s%d-%d-cli", Prefix, os.Getpid(), id),
		Net:        n,
		ServerIP:   netip.AddrFrom4([4]byte{10, 211, byte(n), 1}),
		BadIP:      netip.AddrFrom4([4]byte{10, 211, byte(n), 2}),
		GoodIP:     netip.AddrFrom4([4]byte{10, 211, byte(n), 3}),
		ServerMAC:  fmt.Sprintf("02:5d:%02x:00:00:01", n),
		ClientMAC:  fmt.Sprintf("02:5d:%02x:00:00:02", n),
		stop:       make(chan struct{}),
		svcCmd:     slices.Clone(opts.ServiceCommand),
		inService:  opts.ServiceListeners,
		releaseNet: func() { seqMu.Lock(); delete(netInUse, n); seqMu.Unlock() },
	}
	if opts.IPv6 {
		l.ServerIP6 = ula(n, 1)
		l.BadIP6 = ula(n, 2)
		l.GoodIP6 = ula(n, 3)
	}
	return l, l.setup(ctx, opts)
}

// ula is fd00:5d:n::host.
func ula(n, host int) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfd, 0x00
	b[2], b[3] = 0x00, 0x5d
	b[4], b[5] = 0, byte(n)
	b[15] = byte(host)
	return netip.AddrFrom16(b)
}

func (l *Lab) setup(ctx context.Context, opts Options) error {
	for _, ns := range []string{l.Server, l.Client} {
		if err := l.ipContext(ctx, "netns", "add", ns); err != nil {
			return err
		}
		l.created = append(l.created, ns)
	}
	// Before the veth exists, so that it inherits the defaults.
	for _, ns := range []string{l.Server, l.Client} {
		settings := [][2]string{{"net.ipv6.conf.all.disable_ipv6", "1"}, {"net.ipv6.conf.default.disable_ipv6", "1"}}
		if opts.IPv6 {
			settings = [][2]string{{"net.ipv6.conf.all.accept_dad", "0"}, {"net.ipv6.conf.default.accept_dad", "0"}}
		}
		for _, s := range settings {
			if err := l.Sysctl(ns, s[0], s[1]); err != nil {
				return err
			}
		}
	}
	steps := [][]string{
		{"-n", l.Server, "link", "add", ServerLink, "address", l.ServerMAC, "type", "veth",
			"peer", "name", ClientLink, "address", l.ClientMAC, "netns", l.Client},
		{"-n", l.Server, "addr", "add", l.ServerIP.String() + "/24", "dev", ServerLink},
		{"-n", l.Client, "addr", "add", l.BadIP.String() + "/24", "dev", ClientLink},
		{"-n", l.Client, "addr", "add", l.GoodIP.String() + "/24", "dev", ClientLink},
	}
	if opts.IPv6 {
		steps = append(steps,
			[]string{"-n", l.Server, "addr", "add", l.ServerIP6.String() + "/64", "dev", ServerLink, "nodad"},
			[]string{"-n", l.Client, "addr", "add", l.BadIP6.String() + "/64", "dev", ClientLink, "nodad"},
			[]string{"-n", l.Client, "addr", "add", l.GoodIP6.String() + "/64", "dev", ClientLink, "nodad"},
			// IPv6 neighbours are static on both sides. Otherwise the bad
			// client's first SYN makes the client solicit with the bad source
			// address, the server's advertisement follows its black-holed
			// neighbour entry (ndisc_send_na() goes through the neighbour
			// table, unlike an ARP reply, which goes to the requester's
			// hardware address), and no client reaches the server at all.
			// Static entries also spare the first connection a lost
			// solicitation (measured: 1 s on 6.18).
			[]string{"-n", l.Client, "neigh", "replace", l.ServerIP6.String(), "lladdr", l.ServerMAC, "dev", ClientLink, "nud", "permanent"},
			[]string{"-n", l.Server, "neigh", "replace", l.BadIP6.String(), "lladdr", l.ClientMAC, "dev", ServerLink, "nud", "permanent"},
			[]string{"-n", l.Server, "neigh", "replace", l.GoodIP6.String(), "lladdr", l.ClientMAC, "dev", ServerLink, "nud", "permanent"},
		)
	}
	steps = append(steps,
		[]string{"-n", l.Server, "link", "set", "lo", "up"},
		[]string{"-n", l.Client, "link", "set", "lo", "up"},
		[]string{"-n", l.Server, "link", "set", ServerLink, "up"},
		[]string{"-n", l.Client, "link", "set", ClientLink, "up"},
	)
	for _, s := range steps {
		if err := l.ipContext(ctx, s...); err != nil {
			return err
		}
	}
	if err := l.Sysctl(l.Client, "net.ipv4.tcp_syn_retries", strconv.Itoa(ClientSynRetries)); err != nil {
		return err
	}
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_synack_retries", strconv.Itoa(ServerSynackRetries)); err != nil {
		return err
	}
	return nil
}

// Close ends what the lab started (processes by pid, sockets, loops), then
// deletes its namespaces. Sockets go first: an open socket holds a reference
// to its namespace. It is safe to call more than once and from several
// goroutines (a signal handler and a deferred call): every call waits for
// the first and returns its error.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		closers := l.closers
		l.closers = nil
		l.mu.Unlock()
		close(l.stop)
		for _, c := range slices.Backward(closers) {
			c()
		}
		l.wg.Wait()
		var errs []error
		for _, ns := range slices.Backward(l.created) {
			if err := l.ip("netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
		l.releaseNet()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// onCleanup registers fn to run when the lab is torn down, before its
// namespaces are deleted; closers run in reverse order of registration. It
// reports false, without registering, when cleanup has already begun.
func (l *Lab) onCleanup(fn func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closers = append(l.closers, fn)
	return true
}

// Done is closed when the lab's cleanup begins. Background loops select on it.
func (l *Lab) Done() <-chan struct{} { return l.stop }

// Commands returns the commands the lab has run so far, with their outcome and
// duration, for debugging. New's failure message and a failed test's log
// include them.
func (l *Lab) Commands() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

func (l *Lab) record(format string, args ...any) {
	l.mu.Lock()
	l.log = append(l.log, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// ipTimeout bounds one `ip` command.
const ipTimeout = 10 * time.Second

// ip runs one iproute2 command and records it.
func (l *Lab) ip(args ...string) error {
	return l.ipContext(context.Background(), args...)
}

// ipContext is ip that does not start, or is killed, once ctx ends.
func (l *Lab) ipContext(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, ipTimeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "ip", args...)
	// Killed for ctx, ip returns at once, unless something it left holds
	// its output open: do not wait for that.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	l.record("ip %s  # %v %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), status(err))
	if cerr := ctx.Err(); err != nil && cerr != nil && !errors.Is(err, cerr) {
		// Killed for ctx: say so, not only "signal: killed".
		err = fmt.Errorf("%w (%w)", cerr, err)
	}
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func status(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// checkNS reports an error unless ns is one of the lab's namespaces: a lab
// acts only inside namespaces it created.
func (l *Lab) checkNS(ns string) error {
	if ns != l.Server && ns != l.Client {
		return fmt.Errorf("namespace %q does not belong to lab %s/%s", ns, l.Server, l.Client)
	}
	return nil
}

// IPs returns the lab's addresses of the given family, in the order server,
// bad client, good client; ok is false for IPv6 in a lab built without it.
func (l *Lab) IPs(v6 bool) (server, bad, good netip.Addr, ok bool) {
	if v6 {
		return l.ServerIP6, l.BadIP6, l.GoodIP6, l.ServerIP6.IsValid()
	}
	return l.ServerIP, l.BadIP, l.GoodIP, true
}

// Blackhole points the server's neighbour entry for client at BlackholeMAC,
// permanently, so every packet the server sends to client (SYN-ACKs above
// all) is discarded by the client's veth: handshakes from client never
// complete, while the other client works normally.
func (l *Lab) Blackhole(client netip.Addr) error {
	if client != l.BadIP && client != l.GoodIP && (!client.IsValid() || (client != l.BadIP6 && client != l.GoodIP6)) {
		return fmt.Errorf("blackhole %s: not a client address of this lab", client)
	}
	return l.ip("-n", l.Server, "neigh", "replace", client.String(), "lladdr", BlackholeMAC, "dev", ServerLink, "nud", "permanent")
}

// Unblackhole undoes Blackhole, so the next SYN-ACK retransmit to client
// gets through: an IPv4 client's entry is deleted and resolved again by ARP,
// an IPv6 client's goes back to the static entry New made.
func (l *Lab) Unblackhole(client netip.Addr) error {
	if client != l.BadIP && client != l.GoodIP && (!client.IsValid() || (client != l.BadIP6 && client != l.GoodIP6)) {
		return fmt.Errorf("unblackhole %s: not a client address of this lab", client)
	}
	if client.Is6() {
		return l.ip("-n", l.Server, "neigh", "replace", client.String(), "lladdr", l.ClientMAC, "dev", ServerLink, "nud", "permanent")
	}
	return l.ip("-n", l.Server, "neigh", "del", client.String(), "dev", ServerLink)
}

// staleName matches a lab namespace's name and captures its creator's pid.
// Compiled on first use: the lab is linked into every snapdiag (selftest).
var staleName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(Prefix) + `([0-9]+)-`)
})

// CleanStale deletes the sdlab-* namespaces whose creating process is gone,
// left behind by killed test runs, and returns their names. It never touches
// a namespace of a live process (a test running in parallel) and kills no
// process: whatever still runs inside a stale namespace is bounded in time and
// the namespace itself disappears when it exits.
func CleanStale() ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", NetnsDir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		m := staleName().FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || processAlive(pid) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
		out, err := exec.CommandContext(ctx, "ip", "netns", "del", e.Name()).CombinedOutput()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", e.Name(), err, strings.TrimSpace(string(out))))
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// processAlive reports whether pid names a live process. EPERM means it
// exists but belongs to someone else.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Namespaces lists the sdlab-* namespaces that exist now, for tests that check
// nothing was left behind.
func Namespaces() ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", NetnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), Prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// nsPath is the bind mount that names ns.
func nsPath(ns string) string { return filepath.Join(NetnsDir, ns) }

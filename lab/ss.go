package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SSListener is one row of `ss -Hltn`.
type SSListener struct {
	// Local is ADDR:PORT exactly as ss prints it (10.211.1.1:8080, [::]:8080),
	// the same spelling as a listeners.json "local".
	Local string
	Port  int
	// RecvQ is the accept-queue length and SendQ the effective backlog
	// (tcp_diag_get_info()).
	RecvQ, SendQ uint32
}

// SSReport is what ss shows about a namespace's listen path.
type SSReport struct {
	Listeners []SSListener
	// SynRecv counts request sockets (`ss -Htn state syn-recv`) per local port.
	SynRecv map[int]int
}

// Listener returns the listener on port, if there is exactly one.
func (r *SSReport) Listener(port int) (SSListener, bool) {
	var found []SSListener
	for _, l := range r.Listeners {
		if l.Port == port {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return SSListener{}, false
	}
	return found[0], true
}

// SS runs `ss -Hltn` and `ss -Htn state syn-recv` inside ns and parses them:
// an independent view to compare snapdiag's listeners.json with.
func (l *Lab) SS(ctx context.Context, ns string) (*SSReport, error) {
	out, err := l.Exec(ctx, ns, "ss", "-Hltn")
	if err != nil {
		return nil, err
	}
	r := &SSReport{}
	if r.Listeners, err = parseSSListeners(bytes.NewReader(out.Stdout)); err != nil {
		return nil, fmt.Errorf("parse ss -Hltn: %w", err)
	}
	out, err = l.Exec(ctx, ns, "ss", "-Htn", "state", "syn-recv")
	if err != nil {
		return nil, err
	}
	if r.SynRecv, err = parseSSSynRecv(bytes.NewReader(out.Stdout)); err != nil {
		return nil, fmt.Errorf("parse ss -Htn state syn-recv: %w", err)
	}
	return r, nil
}

// ssRow splits one ss line into Recv-Q, Send-Q, local and peer. With a single
// state filter ss leaves the State column out, so a row starts either with
// the state name or with Recv-Q.
func ssRow(line string) (recvQ, sendQ uint32, local, peer string, err error) {
	f := strings.Fields(line)
	if len(f) > 0 {
		if _, err := strconv.ParseUint(f[0], 10, 32); err != nil {
			f = f[1:] // State column
		}
	}
	if len(f) < 4 {
		return 0, 0, "", "", fmt.Errorf("ss row %q: want Recv-Q Send-Q Local Peer", line)
	}
	r, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, 0, "", "", fmt.Errorf("ss row %q: Recv-Q: %w", line, err)
	}
	s, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return 0, 0, "", "", fmt.Errorf("ss row %q: Send-Q: %w", line, err)
	}
	return uint32(r), uint32(s), f[2], f[3], nil
}

// ssPort is the port after the last colon of an ss address
// (10.0.0.1:80, [::1]:80, 10.0.0.1%lo:80, *:80).
func ssPort(addr string) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0, fmt.Errorf("address %q has no port", addr)
	}
	p, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if err != nil {
		return 0, fmt.Errorf("address %q: port: %w", addr, err)
	}
	return int(p), nil
}

func parseSSListeners(r io.Reader) ([]SSListener, error) {
	var out []SSListener
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		rq, sq, local, _, err := ssRow(sc.Text())
		if err != nil {
			return nil, err
		}
		port, err := ssPort(local)
		if err != nil {
			return nil, err
		}
		out = append(out, SSListener{Local: local, Port: port, RecvQ: rq, SendQ: sq})
	}
	return out, sc.Err()
}

func parseSSSynRecv(r io.Reader) (map[int]int, error) {
	out := map[int]int{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		_, _, local, _, err := ssRow(sc.Text())
		if err != nil {
			return nil, err
		}
		port, err := ssPort(local)
		if err != nil {
			return nil, err
		}
		out[port]++
	}
	return out, sc.Err()
}

// SSMem is one listener of `ss -Hltnme`: its socket and its own drop
// counter.
type SSMem struct {
	// Local is ADDR:PORT as ss prints it; Inode is the socket's inode
	// (ino:), which tells the sockets of an SO_REUSEPORT group apart.
	Local string
	Inode uint32
	// Drops is the "d" of skmem: sk_drops, the listener's own drop
	// counter (SK_MEMINFO_DROPS).
	Drops uint32
}

// SSMem runs `ss -Hltnme` inside ns and returns every listener with its
// inode and its own drop counter: ss's view of what listeners.json records
// as "drops".
func (l *Lab) SSMem(ctx context.Context, ns string) ([]SSMem, error) {
	out, err := l.Exec(ctx, ns, "ss", "-Hltnme")
	if err != nil {
		return nil, err
	}
	ms, err := parseSSMem(bytes.NewReader(out.Stdout))
	if err != nil {
		return nil, fmt.Errorf("parse ss -Hltnme: %w", err)
	}
	return ms, nil
}

// parseSSMem reads `ss -Hltnme`: a socket's row (with ino:N among the -e
// fields), then an indented line with skmem:(r0,rb...,d7).
func parseSSMem(r io.Reader) ([]SSMem, error) {
	var out []SSMem
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if mem, ok := strings.CutPrefix(strings.TrimSpace(line), "skmem:("); ok {
			if len(out) == 0 {
				return nil, fmt.Errorf("skmem line %q before any socket", line)
			}
			d, ok := skmemField(strings.TrimSuffix(mem, ")"), "d")
			if !ok {
				return nil, fmt.Errorf("skmem line %q has no d field", line)
			}
			out[len(out)-1].Drops = d
			continue
		}
		_, _, local, _, err := ssRow(line)
		if err != nil {
			return nil, err
		}
		m := SSMem{Local: local}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "ino:"); ok {
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("ss row %q: ino: %w", line, err)
				}
				m.Inode = uint32(n)
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// skmemField returns the value of one field of skmem's list (r0,rb131072,
// ...,d7): the number after the field's name.
func skmemField(list, name string) (uint32, bool) {
	for _, f := range strings.Split(list, ",") {
		v, ok := strings.CutPrefix(f, name)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err == nil {
			return uint32(n), true
		}
	}
	return 0, false
}

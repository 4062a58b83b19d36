package collectors

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
)

// Read dumps every TCP listener now, as a sample records it (queues,
// SYN-RECV count, the socket's own drops), with its owner from l's cache:
// a live view reads the listeners through it at every refresh, and an owner
// is looked for once per listener, not once per refresh. Owners are looked
// for under h.Proc.
func (l *Listeners) Read(ctx context.Context, h Host) ([]bundle.Listener, error) {
	if err := h.liveNS(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	n := len(l.owners) // the listeners of the last read
	l.mu.Unlock()
	ls, err := readListenersSized(ctx, h, n+n/8)
	if err != nil {
		return nil, err
	}
	proc := h.Proc
	if proc == "" {
		proc = "/proc"
	}
	l.setOwners(ctx, proc, ls)
	return ls, nil
}

// HalfOpenSource is one remote address with requests in a listener's SYN
// queue.
type HalfOpenSource struct {
	Addr netip.Addr
	// Requests is how many of the listener's request sockets it holds.
	Requests int
	// MaxRetrans is the most SYN-ACK retransmits among them: a source whose
	// requests are all retransmitting never answers its SYN-ACKs.
	MaxRetrans uint8
}

// HalfOpen is a listener's SYN queue by source, as the socket table shows it
// now.
type HalfOpen struct {
	// Total is every request socket attributed to the listener.
	Total int
	// Sources are the remote addresses, the most requests first, at most
	// the limit asked for.
	Sources []HalfOpenSource
	// Others is the requests of the sources left out: past the limit, or
	// past the bound on distinct sources one read keeps.
	Others int
}

// maxHalfOpenKeys bounds the distinct (listener address, source) pairs one
// ReadHalfOpen keeps: a spoofed SYN flood has as many sources as requests,
// and tcp_max_syn_backlog (per listener) does not bound the host.
const maxHalfOpenKeys = 1 << 17

// halfOpenKey is one source of requests to one local endpoint.
type halfOpenKey struct {
	family uint8
	local  netip.AddrPort // unmapped
	remote netip.Addr     // unmapped
}

type halfOpenCount struct {
	n       int
	retrans uint8
}

// ReadHalfOpen dumps the listeners and the SYN_RECV request sockets of the
// namespace h reads, now, and returns the requests held by the listener
// whose Local is local (as Read writes it), by remote address, at most
// limit sources. Requests are attributed to listeners as the listeners'
// SYN-RECV counts are, so the total matches the listener's count of the
// same moment. A listener that is no longer there is an error wrapping
// fs.ErrNotExist.
func ReadHalfOpen(ctx context.Context, h Host, local string, limit int) (HalfOpen, error) {
	if err := h.liveNS(); err != nil {
		return HalfOpen{}, err
	}
	t := newListenerTable(h.zoner())
	keyed := map[halfOpenKey]halfOpenCount{}
	err := h.dumper().Dump(ctx, sockdiag.StatesListen|sockdiag.StatesSynRecv, 0, func(m *sockdiag.Msg) error {
		switch {
		case m.State == sockdiag.StateListen:
			return t.addListener(m)
		case !m.Request():
			return nil
		}
		k := halfOpenKey{m.Family, netip.AddrPortFrom(m.Src.Addr().Unmap(), m.Src.Port()), m.Dst.Addr().Unmap()}
		c, ok := keyed[k]
		if !ok && len(keyed) >= maxHalfOpenKeys {
			// Counted, without its source, for the listener it belongs to.
			t.pending[requestKey{k.family, k.local}]++
			return nil
		}
		c.n++
		c.retrans = max(c.retrans, m.Retrans)
		keyed[k] = c
		return nil
	})
	if err != nil {
		return HalfOpen{}, fmt.Errorf("read tcp listeners and SYN-RECV sockets: %w", err)
	}
	t.attributePending()
	target := -1
	for _, e := range t.entries {
		if e.rec.Local == local {
			target = e.group
			break
		}
	}
	if target < 0 {
		return HalfOpen{}, fmt.Errorf("listener %s: %w", local, fs.ErrNotExist)
	}
	out := HalfOpen{Total: t.synRecv[target], Others: t.synRecv[target]}
	bySrc := map[netip.Addr]HalfOpenSource{}
	for k, c := range keyed {
		if g, ok := t.lookup(k.family, k.local.Addr(), k.local.Port()); !ok || g != target {
			continue
		}
		s := bySrc[k.remote]
		s.Addr = k.remote
		s.Requests += c.n
		s.MaxRetrans = max(s.MaxRetrans, c.retrans)
		bySrc[k.remote] = s
		out.Total += c.n
	}
	for _, s := range bySrc {
		out.Sources = append(out.Sources, s)
	}
	slices.SortFunc(out.Sources, func(a, b HalfOpenSource) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), a.Addr.Compare(b.Addr))
	})
	if limit >= 0 && len(out.Sources) > limit {
		for _, s := range out.Sources[limit:] {
			out.Others += s.Requests
		}
		out.Sources = out.Sources[:limit]
	}
	return out, nil
}

// maxNetstat bounds one read of /proc/net/netstat, some 4 KiB on a 6.18
// kernel.
const maxNetstat = 1 << 20

// ReadNetstat reads /proc/net/netstat of the namespace h reads, as the
// counter samples store it, for a live view to parse.
func ReadNetstat(h Host) ([]byte, error) {
	data, err := h.readNet(strings.TrimPrefix(bundle.SampleNetstat, "proc/"))
	if err == nil && len(data) > maxNetstat {
		return nil, fmt.Errorf("read netstat: larger than %d bytes", maxNetstat)
	}
	return data, err
}

// liveNS refuses a read outside a capture that must happen inside a
// namespace h could not enter: the Dumper of a Host without a Shared would
// otherwise read the process's own namespace.
func (h Host) liveNS() error {
	if h.outside() {
		return h.notEntered("listeners")
	}
	return nil
}

package lab

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
)

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Counters are the SNMP and netstat counters of one namespace, keyed
// "Section.Name" as nstat spells them without the merged prefix:
// "TcpExt.TCPReqQFullDrop", "Tcp.RetransSegs".
type Counters map[string]int64

// Sub returns c minus before for every key of c: the counters' deltas.
func (c Counters) Sub(before Counters) Counters {
	d := make(Counters, len(c))
	for k, v := range c {
		d[k] = v - before[k]
	}
	return d
}

// parseCounters reads the two-line header/values format of /proc/net/netstat
// and /proc/net/snmp into c: a line of names after "Section:", then a line of
// values with the same prefix.
func parseCounters(r io.Reader, c Counters) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var header []string
	var section string
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return fmt.Errorf("line %q has no section", line)
		}
		fields := strings.Fields(rest)
		if header == nil || section != name {
			header, section = fields, name
			continue
		}
		if len(fields) != len(header) {
			return fmt.Errorf("section %s: %d names but %d values", name, len(header), len(fields))
		}
		for i, f := range fields {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(f, 10, 64)
				if uerr != nil {
					return fmt.Errorf("section %s, %s: %w", name, header[i], err)
				}
				v = int64(u) // wraps beyond 2^63: a delta of two wrapped values is still right
			}
			c[name+"."+header[i]] = v
		}
		header, section = nil, ""
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if header != nil {
		return fmt.Errorf("section %s has names but no values", section)
	}
	return nil
}

// TCPState is a TCP state as the kernel numbers it (include/net/tcp_states.h).
type TCPState uint8

// TCP states. Request sockets are reported as StateSynRecv by both
// /proc/net/tcp and inet_diag, though the kernel keeps them in
// TCP_NEW_SYN_RECV: both map that state to TCP_SYN_RECV when they print it.
const (
	StateEstablished TCPState = 1
	StateSynSent     TCPState = 2
	StateSynRecv     TCPState = 3
	StateFinWait1    TCPState = 4
	StateFinWait2    TCPState = 5
	StateTimeWait    TCPState = 6
	StateClose       TCPState = 7
	StateCloseWait   TCPState = 8
	StateLastAck     TCPState = 9
	StateListen      TCPState = 10
	StateClosing     TCPState = 11
	StateNewSynRecv  TCPState = 12
)

var stateNames = map[TCPState]string{
	StateEstablished: "ESTAB", StateSynSent: "SYN-SENT", StateSynRecv: "SYN-RECV",
	StateFinWait1: "FIN-WAIT-1", StateFinWait2: "FIN-WAIT-2", StateTimeWait: "TIME-WAIT",
	StateClose: "UNCONN", StateCloseWait: "CLOSE-WAIT", StateLastAck: "LAST-ACK",
	StateListen: "LISTEN", StateClosing: "CLOSING", StateNewSynRecv: "NEW-SYN-RECV",
}

// String is the state's name as ss prints it.
func (s TCPState) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return "STATE(" + strconv.Itoa(int(s)) + ")"
}

// ProcSocket is one row of /proc/net/tcp or /proc/net/tcp6.
type ProcSocket struct {
	Local, Remote netip.AddrPort
	State         TCPState
	// TxQueue and RxQueue are the tx_queue:rx_queue column; for a LISTEN row
	// RxQueue is the accept-queue length (get_tcp4_sock()).
	TxQueue, RxQueue uint32
	UID              uint32
	Inode            uint64
}

// parseProcNetTCP parses /proc/net/tcp or tcp6 (get_tcp4_sock(),
// get_openreq4(), get_timewait4_sock() and their IPv6 twins).
func parseProcNetTCP(r io.Reader) ([]ProcSocket, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var out []ProcSocket
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			if strings.Contains(line, "local_address") {
				continue
			}
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("row %q: %d fields, want at least 10", line, len(f))
		}
		var s ProcSocket
		var err error
		if s.Local, err = parseHexAddrPort(f[1]); err != nil {
			return nil, fmt.Errorf("row %q: local: %w", line, err)
		}
		if s.Remote, err = parseHexAddrPort(f[2]); err != nil {
			return nil, fmt.Errorf("row %q: remote: %w", line, err)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("row %q: state: %w", line, err)
		}
		s.State = TCPState(st)
		tx, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			return nil, fmt.Errorf("row %q: queues %q", line, f[4])
		}
		t, err := strconv.ParseUint(tx, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("row %q: tx_queue: %w", line, err)
		}
		q, err := strconv.ParseUint(rx, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("row %q: rx_queue: %w", line, err)
		}
		s.TxQueue, s.RxQueue = uint32(t), uint32(q)
		uid, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("row %q: uid: %w", line, err)
		}
		s.UID = uint32(uid)
		if s.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
			return nil, fmt.Errorf("row %q: inode: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes "0100D30A:1F90": the address as 32-bit words in
// host byte order, each printed with %08X, then the port in hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: port: %w", s, err)
	}
	if len(a) != 8 && len(a) != 32 {
		return netip.AddrPort{}, fmt.Errorf("%q: address of %d hex digits", s, len(a))
	}
	b := make([]byte, len(a)/2)
	for i := 0; i < len(a); i += 8 {
		w, err := strconv.ParseUint(a[i:i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%q: address: %w", s, err)
		}
		binary.NativeEndian.PutUint32(b[i/2:], uint32(w))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

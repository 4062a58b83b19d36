package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// The codec of sockets/tcp.jsonl: one Socket per line, as encoding/json
// writes it, in both directions. The collector encodes a table of 200,000
// sockets without reflection or allocation; readers scan the rows the
// collector writes without reflection and leave anything else (escapes,
// other spellings, foreign writers) to encoding/json, so every row reads as
// encoding/json would read it.

// MaxSocketLine bounds one row of sockets/tcp.jsonl as readers take it. A row
// holding every field of tcp_info is under 1.5 KiB; a longer one is not ours.
const MaxSocketLine = 64 << 10

// ErrMalformedRow is wrapped by a RowError: a row of a member that does not
// decode. It is a kind of damage: errors.Is(err, ErrCorrupt) holds too.
var ErrMalformedRow error = &kindError{msg: "malformed row", parent: ErrCorrupt}

// RowError is a row of a JSON-lines member that could not be read: where it
// is and why.
type RowError struct {
	Path string // the member, e.g. PathSocketsTCP
	Line int    // 1-based
	Err  error
}

// Error says which row of which member could not be read, and why.
func (e *RowError) Error() string {
	return fmt.Sprintf("%s line %d: %v: %v", e.Path, e.Line, ErrMalformedRow, e.Err)
}

// Unwrap gives ErrMalformedRow and the cause.
func (e *RowError) Unwrap() []error { return []error{ErrMalformedRow, e.Err} }

var errLineTooLong = fmt.Errorf("longer than %d bytes", MaxSocketLine)

// NumSocketStates is the number of socket states the table and the summary
// name: the kernel's TCP states TCP_ESTABLISHED (1) to TCP_CLOSING (11), and
// 0 for a state the kernel does not define.
const NumSocketStates = 12

// SocketStateName is ss's name for the kernel's TCP state number state
// (include/net/tcp_states.h, named as ss.c's sstate_name does, except
// TCP_CLOSE, which ss shows as UNCONN and the table as CLOSE): the State of
// a Socket and the keys of a SocketSummary's counts. Out-of-range states
// are UNKNOWN.
func SocketStateName(state int) string {
	switch state {
	case 1:
		return "ESTAB"
	case 2:
		return "SYN-SENT"
	case 3:
		return "SYN-RECV"
	case 4:
		return "FIN-WAIT-1"
	case 5:
		return "FIN-WAIT-2"
	case 6:
		return "TIME-WAIT"
	case 7:
		return "CLOSE"
	case 8:
		return "CLOSE-WAIT"
	case 9:
		return "LAST-ACK"
	case 10:
		return "LISTEN"
	case 11:
		return "CLOSING"
	default:
		return "UNKNOWN"
	}
}

// numSocketTimers is the number of timer kinds inet_diag reports
// (idiag_timer 1 to 4), with one more for the kinds it may add.
const numSocketTimers = 5

// SocketTimerName is ss's name for inet_diag's idiag_timer (ss.c
// tcp_timer_print): the Timer of a Socket, "" when no timer runs (0), and
// "unknown" for a kind ss does not name.
func SocketTimerName(timer int) string {
	switch timer {
	case 0:
		return ""
	case 1:
		return "on"
	case 2:
		return "keepalive"
	case 3:
		return "timewait"
	case 4:
		return "persist"
	default:
		return "unknown"
	}
}

// RawSocket is a Socket as a collector holds it before its addresses are
// text: AppendRawSocket writes the same line as AppendSocket would for the
// Socket with Local and Remote formatted by AppendAddrPort, without building
// those strings. Its fields are the Socket's, by name.
type RawSocket struct {
	Family string
	State  string
	Local  netip.AddrPort
	Remote netip.AddrPort
	// LocalZone and RemoteZone are the interface names of link-local
	// addresses, empty for the others.
	LocalZone  string
	RemoteZone string
	RecvQ      uint32
	SendQ      uint32
	UID        uint32
	Inode      uint32
	Cookie     uint64
	Timer      string
	ExpiresMS  uint32
	Retrans    uint8
	Info       *TCPInfo
}

// AppendSocket appends s as one line of sockets/tcp.jsonl, newline included:
// byte for byte what encoding/json writes for it, without reflection.
func AppendSocket(b []byte, s *Socket) []byte {
	b = append(b, `{"family":`...)
	b = appendJSONString(b, s.Family)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, s.State)
	b = append(b, `,"local":`...)
	b = appendJSONString(b, s.Local)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, s.Remote)
	return appendSocketRest(b, s.RecvQ, s.SendQ, s.UID, s.Inode, s.Cookie, s.Timer, s.ExpiresMS, s.Retrans, s.Info)
}

// AppendRawSocket appends s as one line of sockets/tcp.jsonl, newline
// included, without allocating: the collector's path for every socket.
func AppendRawSocket(b []byte, s *RawSocket) []byte {
	b = append(b, `{"family":`...)
	b = appendJSONString(b, s.Family)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, s.State)
	b = append(b, `,"local":"`...)
	b = appendAddrPort(b, s.Local, s.LocalZone, true)
	b = append(b, `","remote":"`...)
	b = appendAddrPort(b, s.Remote, s.RemoteZone, true)
	b = append(b, '"')
	return appendSocketRest(b, s.RecvQ, s.SendQ, s.UID, s.Inode, s.Cookie, s.Timer, s.ExpiresMS, s.Retrans, s.Info)
}

func appendSocketRest(b []byte, recvQ, sendQ, uid, inode uint32, cookie uint64, timer string, expires uint32, retrans uint8, info *TCPInfo) []byte {
	// Zero fields are omitted (a reader takes a missing key for 0): most of
	// a busy table is idle sockets whose queues, uid and tcp_info counters
	// are 0, and their keys were half the bytes encoded and compressed.
	b = appendUintField(b, `,"recv_q":`, uint64(recvQ), true)
	b = appendUintField(b, `,"send_q":`, uint64(sendQ), true)
	b = appendUintField(b, `,"uid":`, uint64(uid), true)
	b = appendUintField(b, `,"inode":`, uint64(inode), true)
	b = appendUintField(b, `,"cookie":`, cookie, true)
	if timer != "" {
		b = append(b, `,"timer":`...)
		b = appendJSONString(b, timer)
	}
	b = appendUintField(b, `,"expires_ms":`, uint64(expires), true)
	b = appendUintField(b, `,"retrans":`, uint64(retrans), true)
	if info != nil {
		b = append(b, `,"info":`...)
		b = appendTCPInfo(b, info)
	}
	return append(b, "}\n"...)
}

// appendTCPInfo appends i as a JSON object of its non-zero fields, in the
// order of tcpInfoKeys: {} when every field is 0.
func appendTCPInfo(b []byte, i *TCPInfo) []byte {
	open := len(b)
	b = appendUintField(b, `,"state":`, uint64(i.State), true)
	b = appendUintField(b, `,"ca_state":`, uint64(i.CAState), true)
	b = appendUintField(b, `,"retransmits":`, uint64(i.Retransmits), true)
	b = appendUintField(b, `,"probes":`, uint64(i.Probes), true)
	b = appendUintField(b, `,"backoff":`, uint64(i.Backoff), true)
	b = appendUintField(b, `,"options":`, uint64(i.Options), true)
	b = appendUintField(b, `,"snd_wscale":`, uint64(i.SndWscale), true)
	b = appendUintField(b, `,"rcv_wscale":`, uint64(i.RcvWscale), true)
	b = appendUintField(b, `,"rto_us":`, uint64(i.RTO), true)
	b = appendUintField(b, `,"ato_us":`, uint64(i.ATO), true)
	b = appendUintField(b, `,"snd_mss":`, uint64(i.SndMSS), true)
	b = appendUintField(b, `,"rcv_mss":`, uint64(i.RcvMSS), true)
	b = appendUintField(b, `,"unacked":`, uint64(i.Unacked), true)
	b = appendUintField(b, `,"sacked":`, uint64(i.Sacked), true)
	b = appendUintField(b, `,"lost":`, uint64(i.Lost), true)
	b = appendUintField(b, `,"retrans":`, uint64(i.Retrans), true)
	b = appendUintField(b, `,"last_data_sent_ms":`, uint64(i.LastDataSent), true)
	b = appendUintField(b, `,"last_data_recv_ms":`, uint64(i.LastDataRecv), true)
	b = appendUintField(b, `,"last_ack_recv_ms":`, uint64(i.LastAckRecv), true)
	b = appendUintField(b, `,"pmtu":`, uint64(i.PMTU), true)
	b = appendUintField(b, `,"rcv_ssthresh":`, uint64(i.RcvSsthresh), true)
	b = appendUintField(b, `,"rtt_us":`, uint64(i.RTT), true)
	b = appendUintField(b, `,"rttvar_us":`, uint64(i.RTTVar), true)
	b = appendUintField(b, `,"snd_ssthresh":`, uint64(i.SndSsthresh), true)
	b = appendUintField(b, `,"snd_cwnd":`, uint64(i.SndCwnd), true)
	b = appendUintField(b, `,"advmss":`, uint64(i.AdvMSS), true)
	b = appendUintField(b, `,"reordering":`, uint64(i.Reordering), true)
	b = appendUintField(b, `,"rcv_rtt_us":`, uint64(i.RcvRTT), true)
	b = appendUintField(b, `,"rcv_space":`, uint64(i.RcvSpace), true)
	b = appendUintField(b, `,"total_retrans":`, uint64(i.TotalRetrans), true)
	b = appendUintField(b, `,"pacing_rate":`, i.PacingRate, true)
	b = appendUintField(b, `,"bytes_acked":`, i.BytesAcked, true)
	b = appendUintField(b, `,"bytes_received":`, i.BytesReceived, true)
	b = appendUintField(b, `,"segs_out":`, uint64(i.SegsOut), true)
	b = appendUintField(b, `,"segs_in":`, uint64(i.SegsIn), true)
	b = appendUintField(b, `,"min_rtt_us":`, uint64(i.MinRTT), true)
	b = appendUintField(b, `,"delivery_rate":`, i.DeliveryRate, true)
	b = appendUintField(b, `,"busy_time_us":`, i.BusyTimeUS, true)
	b = appendUintField(b, `,"bytes_sent":`, i.BytesSent, true)
	b = appendUintField(b, `,"bytes_retrans":`, i.BytesRetrans, true)
	// Every field came with its comma: the first one's becomes the brace.
	if len(b) == open {
		b = append(b, '{')
	} else {
		b[open] = '{'
	}
	return append(b, '}')
}

// AppendAddrPort appends ap as the socket table and the listener rows write
// local and remote addresses: 10.0.0.1:143, [::]:143, [fe80::1%eth0]:22
// (zone is the interface name, or empty), and, as ss does, * for port 0
// (the remote side of a listener: 0.0.0.0:*).
func AppendAddrPort(b []byte, ap netip.AddrPort, zone string) []byte {
	return appendAddrPort(b, ap, zone, false)
}

// SplitAddrPort splits an address written by AppendAddrPort into its host
// (brackets removed, zone kept: fe80::1%eth0) and its port. ok is false when
// there is no numeric port: ss's * included. It does not allocate.
func SplitAddrPort(s string) (host string, port uint16, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || i == len(s)-1 {
		return "", 0, false
	}
	p := 0
	for _, c := range []byte(s[i+1:]) {
		if c < '0' || c > '9' {
			return "", 0, false
		}
		if p = p*10 + int(c-'0'); p > 65535 {
			return "", 0, false
		}
	}
	host = s[:i]
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, uint16(p), true
}

// appendAddrPort is AppendAddrPort, with the zone escaped for the inside of
// a JSON string when escape is set (addresses and ports never need it).
func appendAddrPort(b []byte, ap netip.AddrPort, zone string, escape bool) []byte {
	a := ap.Addr()
	if a.Is4() {
		b = a.AppendTo(b)
	} else {
		b = append(b, '[')
		b = a.AppendTo(b)
		if zone != "" {
			b = append(b, '%')
			if escape {
				b = appendJSONStringBody(b, zone)
			} else {
				b = append(b, zone...)
			}
		}
		b = append(b, ']')
	}
	b = append(b, ':')
	if ap.Port() == 0 {
		return append(b, '*')
	}
	return appendUint(b, uint64(ap.Port()))
}

// DecodeSocket decodes one row of sockets/tcp.jsonl into s, as encoding/json
// would: the rows the collector writes by the fast scanner, anything else by
// encoding/json itself.
func DecodeSocket(line []byte, s *Socket) error {
	var info TCPInfo
	if scanSocket(line, s, &info) {
		if s.Info != nil {
			s.Info = new(TCPInfo)
			*s.Info = info
		}
		return nil
	}
	return decodeSocketSlow(line, s)
}

func decodeSocketSlow(line []byte, s *Socket) error {
	*s = Socket{}
	if err := json.Unmarshal(line, s); err != nil {
		return fmt.Errorf("decode socket row: %w", err)
	}
	return nil
}

// SocketReader streams the rows of sockets/tcp.jsonl, one at a time, in
// memory bounded by MaxSocketLine whatever the table's size.
type SocketReader struct {
	br       *bufio.Reader
	line     int
	row      Socket
	info     TCPInfo
	skipInfo bool
	err      error // sticky: the reader's end or its input's failure
}

// SkipInfo makes the reader leave every row's tcp_info out (Info is nil),
// for readers that need only the addresses, states and queues: the analyzer
// reads the table of a busy host faster without decoding 40 fields a row.
// The object is still checked to hold only unsigned integers, but not
// their ranges: a row the full decoder refuses for an out-of-range tcp_info
// field reads here without it.
func (r *SocketReader) SkipInfo() *SocketReader {
	r.skipInfo = true
	return r
}

// NewSocketReader returns a reader of the rows in r.
func NewSocketReader(r io.Reader) *SocketReader {
	return &SocketReader{br: bufio.NewReaderSize(r, MaxSocketLine)}
}

// Next returns the next row, skipping blank lines; io.EOF after the last.
// The row is the reader's and is overwritten by the following call; copy
// what is kept. A row that does not decode, or is longer than MaxSocketLine,
// gives a *RowError and is skipped: Next may be called again for the rows
// after it. Any other error ends the reading.
func (r *SocketReader) Next() (*Socket, error) {
	for r.err == nil {
		line, err := r.br.ReadSlice('\n')
		r.line++
		if err == bufio.ErrBufferFull {
			// An overlong row: skip it whole.
			for err == bufio.ErrBufferFull {
				_, err = r.br.ReadSlice('\n')
			}
			r.setErr(err)
			return nil, &RowError{Path: PathSocketsTCP, Line: r.line, Err: errLineTooLong}
		}
		r.setErr(err)
		if isBlank(line) {
			continue
		}
		info := &r.info
		if r.skipInfo {
			info = nil
		}
		if scanSocket(line, &r.row, info) {
			return &r.row, nil
		}
		if err := decodeSocketSlow(line, &r.row); err != nil {
			return nil, &RowError{Path: PathSocketsTCP, Line: r.line, Err: err}
		}
		if r.skipInfo {
			r.row.Info = nil
		}
		return &r.row, nil
	}
	return nil, r.err
}

// setErr records the error of the last read: io.EOF ends the table, other
// errors are its input's.
func (r *SocketReader) setErr(err error) {
	switch {
	case err == nil || r.err != nil:
	case errors.Is(err, io.EOF):
		r.err = io.EOF
	default:
		r.err = fmt.Errorf("read %s: %w", PathSocketsTCP, err)
	}
}

func isBlank(b []byte) bool {
	return skipSpace(b, 0) == len(b)
}

// ForEach calls fn for every row still to read, in file order, skipping
// the malformed ones, and returns how many it skipped: for readers that show
// what a damaged table still holds. The Socket passed to fn is reused for
// the next row. It stops at fn's first error or at a read error.
func (r *SocketReader) ForEach(fn func(*Socket) error) (malformed int, err error) {
	for {
		s, err := r.Next()
		if err != nil {
			var rowErr *RowError
			switch {
			case err == io.EOF:
				return malformed, nil
			case errors.As(err, &rowErr):
				malformed++
				continue
			}
			return malformed, err
		}
		if err := fn(s); err != nil {
			return malformed, err
		}
	}
}

// ForEachSocket calls fn for every row of sockets/tcp.jsonl in r, in file
// order, in bounded memory. The Socket passed to fn is reused for the next
// row: fn copies what it keeps. It stops at the first malformed row (a
// *RowError), at fn's first error, or at a read error; readers that go on
// past a damaged row use SocketReader.ForEach.
func ForEachSocket(r io.Reader, fn func(*Socket) error) error {
	sr := NewSocketReader(r)
	for {
		s, err := sr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
}

// Field bits of scanSocket, to refuse a key given twice (encoding/json keeps
// the last, or merges two info objects; such rows are left to it).
const (
	sockFamily = 1 << iota
	sockState
	sockLocal
	sockRemote
	sockRecvQ
	sockSendQ
	sockUID
	sockInode
	sockCookie
	sockTimer
	sockExpires
	sockRetrans
	sockInfo
)

// scanSocket decodes the row b into s without reflection when it is written
// the way AppendSocket writes rows (any key order, any white space): exact
// keys, each once, plain ASCII strings, integers in range. It reports false
// on anything else, and the caller asks encoding/json, which decides. info
// holds the row's tcp_info; s.Info points to it when the row has one. With
// a nil info, the tcp_info object is checked and skipped.
// Known state, family and timer names are not allocated.
func scanSocket(b []byte, s *Socket, info *TCPInfo) bool {
	*s = Socket{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return isBlank(b[i+1:])
	}
	seen := 0
	for {
		key, j, ok := scanPlainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		var bit int
		switch string(key) {
		case "family", "state", "local", "remote", "timer":
			v, j, ok := scanPlainString(b, i)
			if !ok {
				return false
			}
			i = j
			switch string(key) {
			case "family":
				bit, s.Family = sockFamily, internFamily(v)
			case "state":
				bit, s.State = sockState, internState(v)
			case "local":
				bit, s.Local = sockLocal, string(v)
			case "remote":
				bit, s.Remote = sockRemote, string(v)
			default:
				bit, s.Timer = sockTimer, internTimer(v)
			}
		case "info":
			if info == nil {
				if i, ok = skipUintObject(b, i); !ok {
					return false
				}
				bit = sockInfo
				break
			}
			if i, ok = scanTCPInfo(b, i, info); !ok {
				return false
			}
			bit, s.Info = sockInfo, info
		default:
			v, j, ok := scanUint(b, i)
			if !ok {
				return false
			}
			i = j
			switch string(key) {
			case "recv_q":
				bit, ok = sockRecvQ, put(&s.RecvQ, v)
			case "send_q":
				bit, ok = sockSendQ, put(&s.SendQ, v)
			case "uid":
				bit, ok = sockUID, put(&s.UID, v)
			case "inode":
				bit, ok = sockInode, put(&s.Inode, v)
			case "cookie":
				bit, ok = sockCookie, put(&s.Cookie, v)
			case "expires_ms":
				bit, ok = sockExpires, put(&s.ExpiresMS, v)
			case "retrans":
				bit, ok = sockRetrans, put(&s.Retrans, v)
			default:
				return false
			}
			if !ok {
				return false
			}
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return isBlank(b[i+1:])
		case ',':
			i = skipSpace(b, i+1)
		default:
			return false
		}
	}
}

// tcpInfoKeys are the JSON keys of TCPInfo's fields, quoted and followed by
// the colon, in the order AppendSocket writes them: the scanner expects them
// in that order and compares bytes before it looks a key up.
var tcpInfoKeys = [...]string{
	`"state":`,
	`"ca_state":`,
	`"retransmits":`,
	`"probes":`,
	`"backoff":`,
	`"options":`,
	`"snd_wscale":`,
	`"rcv_wscale":`,
	`"rto_us":`,
	`"ato_us":`,
	`"snd_mss":`,
	`"rcv_mss":`,
	`"unacked":`,
	`"sacked":`,
	`"lost":`,
	`"retrans":`,
	`"last_data_sent_ms":`,
	`"last_data_recv_ms":`,
	`"last_ack_recv_ms":`,
	`"pmtu":`,
	`"rcv_ssthresh":`,
	`"rtt_us":`,
	`"rttvar_us":`,
	`"snd_ssthresh":`,
	`"snd_cwnd":`,
	`"advmss":`,
	`"reordering":`,
	`"rcv_rtt_us":`,
	`"rcv_space":`,
	`"total_retrans":`,
	`"pacing_rate":`,
	`"bytes_acked":`,
	`"bytes_received":`,
	`"segs_out":`,
	`"segs_in":`,
	`"min_rtt_us":`,
	`"delivery_rate":`,
	`"busy_time_us":`,
	`"bytes_sent":`,
	`"bytes_retrans":`,
}

// objectNext reads what follows a member of an object at b[i]: the end of
// the object (end, and the index after the brace) or a comma (the index of
// the next key). ok is false for anything else.
func objectNext(b []byte, i int) (next int, end, ok bool) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return i, false, false
	}
	switch b[i] {
	case '}':
		return i + 1, true, true
	case ',':
		return skipSpace(b, i+1), false, true
	}
	return i, false, false
}

// skipUintObject skips the object at b[i] whose keys are plain strings and
// whose values are unsigned integers, the shape of a tcp_info, and returns
// the index after it. Anything else reports false, and the row goes to
// encoding/json, as with scanTCPInfo.
func skipUintObject(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		_, j, ok := scanPlainString(b, i)
		if !ok {
			return i, false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		if _, i, ok = scanUint(b, skipSpace(b, i+1)); !ok {
			return i, false
		}
		var end bool
		if i, end, ok = objectNext(b, i); !ok || end {
			return i, ok
		}
	}
}

// scanTCPInfo decodes the tcp_info object at b[i] into info, on the terms of
// scanSocket, and returns the index after it.
func scanTCPInfo(b []byte, i int, info *TCPInfo) (int, bool) {
	*info = TCPInfo{}
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	var seen uint64
	next := 0 // the field AppendSocket writes next
	for {
		f := -1
		// Keys come in tcpInfoKeys order, zero fields left out: the next
		// key is usually the expected one or a few after it.
		for k := next; k < len(tcpInfoKeys); k++ {
			if bytes.HasPrefix(b[i:], []byte(tcpInfoKeys[k])) {
				f = k
				i += len(tcpInfoKeys[k])
				break
			}
		}
		if f < 0 {
			key, j, ok := scanPlainString(b, i)
			if !ok {
				return i, false
			}
			for k, quoted := range tcpInfoKeys {
				if len(quoted) == len(key)+3 && string(key) == quoted[1:len(quoted)-2] {
					f = k
					break
				}
			}
			i = skipSpace(b, j)
			if f < 0 || i >= len(b) || b[i] != ':' {
				return i, false
			}
			i++
		}
		v, j, ok := scanUint(b, skipSpace(b, i))
		if !ok || seen&(1<<f) != 0 || !info.set(f, v) {
			return i, false
		}
		seen |= 1 << f
		next = f + 1
		var end bool
		if i, end, ok = objectNext(b, j); !ok || end {
			return i, ok
		}
	}
}

// set stores v in field f (an index of tcpInfoKeys); false when v is out
// of the field's range.
func (in *TCPInfo) set(f int, v uint64) bool {
	switch f {
	case 0:
		return put(&in.State, v)
	case 1:
		return put(&in.CAState, v)
	case 2:
		return put(&in.Retransmits, v)
	case 3:
		return put(&in.Probes, v)
	case 4:
		return put(&in.Backoff, v)
	case 5:
		return put(&in.Options, v)
	case 6:
		return put(&in.SndWscale, v)
	case 7:
		return put(&in.RcvWscale, v)
	case 8:
		return put(&in.RTO, v)
	case 9:
		return put(&in.ATO, v)
	case 10:
		return put(&in.SndMSS, v)
	case 11:
		return put(&in.RcvMSS, v)
	case 12:
		return put(&in.Unacked, v)
	case 13:
		return put(&in.Sacked, v)
	case 14:
		return put(&in.Lost, v)
	case 15:
		return put(&in.Retrans, v)
	case 16:
		return put(&in.LastDataSent, v)
	case 17:
		return put(&in.LastDataRecv, v)
	case 18:
		return put(&in.LastAckRecv, v)
	case 19:
		return put(&in.PMTU, v)
	case 20:
		return put(&in.RcvSsthresh, v)
	case 21:
		return put(&in.RTT, v)
	case 22:
		return put(&in.RTTVar, v)
	case 23:
		return put(&in.SndSsthresh, v)
	case 24:
		return put(&in.SndCwnd, v)
	case 25:
		return put(&in.AdvMSS, v)
	case 26:
		return put(&in.Reordering, v)
	case 27:
		return put(&in.RcvRTT, v)
	case 28:
		return put(&in.RcvSpace, v)
	case 29:
		return put(&in.TotalRetrans, v)
	case 30:
		return put(&in.PacingRate, v)
	case 31:
		return put(&in.BytesAcked, v)
	case 32:
		return put(&in.BytesReceived, v)
	case 33:
		return put(&in.SegsOut, v)
	case 34:
		return put(&in.SegsIn, v)
	case 35:
		return put(&in.MinRTT, v)
	case 36:
		return put(&in.DeliveryRate, v)
	case 37:
		return put(&in.BusyTimeUS, v)
	case 38:
		return put(&in.BytesSent, v)
	case 39:
		return put(&in.BytesRetrans, v)
	}
	return false
}

// put stores v in *dst when it fits.
func put[T uint8 | uint32 | uint64](dst *T, v uint64) bool {
	if uint64(T(v)) != v {
		return false
	}
	*dst = T(v)
	return true
}

// internState returns the state names SocketStateName gives without
// allocating a string per row.
func internState(b []byte) string {
	for state := range NumSocketStates {
		if n := SocketStateName(state); string(b) == n {
			return n
		}
	}
	return string(b)
}

func internFamily(b []byte) string {
	switch string(b) {
	case "inet":
		return "inet"
	case "inet6":
		return "inet6"
	}
	return string(b)
}

// internTimer returns the timer names SocketTimerName gives without
// allocating a string per row.
func internTimer(b []byte) string {
	for timer := 1; timer <= numSocketTimers; timer++ {
		if n := SocketTimerName(timer); string(b) == n {
			return n
		}
	}
	return string(b)
}

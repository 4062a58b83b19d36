// Command sockdump is the floor of the capture benchmark (bench/capture.sh):
// one bare sock_diag dump of every TCP socket, with struct tcp_info as
// snapdiag's socket table asks for it, received into 64 KiB buffers and
// discarded. What it costs is what the kernel costs to walk and serialise the
// table; snapdiag capture can only add to it. It is not part of snapdiag.
//
// By default it sends the request snapdiag sends, both families in one
// TCPDIAG_GETSOCK request with AF_UNSPEC (one walk of the kernel's socket
// hash), falling back to one SOCK_DIAG_BY_FAMILY request per family where
// the kernel refuses it; --per-family sends those two, as ss does.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	familyInet   = 2
	familyInet6  = 10
	tcpDiagGet   = 18 // TCPDIAG_GETSOCK
	sockDiagByFm = 20 // SOCK_DIAG_BY_FAMILY
	nlmsgError   = 2
	nlmsgDone    = 3
	extInfo      = 1 << (2 - 1)  // INET_DIAG_INFO
	statesAll    = 1<<13 - 1 - 1 // TCP_ESTABLISHED .. TCP_NEW_SYN_RECV
	dumpFlags    = 0x1 | 0x300   // NLM_F_REQUEST | NLM_F_DUMP
	bufSize      = 64 << 10
	headerSize   = 16
	sockIDSize   = 48
	ipprotoTCP   = 6
	maxDatagrams = 1 << 24 // bounds the loop whatever the kernel sends
)

var ne = binary.NativeEndian

func main() {
	perFamily := flag.Bool("per-family", false, "one SOCK_DIAG_BY_FAMILY request per family, as ss sends")
	flag.Parse()
	var total stats
	var err error
	if !*perFamily {
		total, err = dump(request(tcpDiagGet, 0))
		var errno syscall.Errno
		if errors.As(err, &errno) && total.sockets == 0 {
			*perFamily = true // the kernel refused the combined request
		}
	}
	if *perFamily {
		total = stats{}
		for _, family := range []byte{familyInet, familyInet6} {
			var s stats
			if s, err = dump(request(sockDiagByFm, family)); err != nil {
				break
			}
			total.sockets += s.sockets
			total.bytes += s.bytes
			total.requests++
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockdump:", err)
		os.Exit(1)
	}
	fmt.Printf("sockets %d bytes %d requests %d\n", total.sockets, total.bytes, max(total.requests, 1))
}

type stats struct {
	sockets, bytes, requests int
}

// request is a dump request for every TCP socket with tcp_info: typ
// tcpDiagGet (struct inet_diag_req, family 0 for both) or sockDiagByFm
// (struct inet_diag_req_v2).
func request(typ uint16, family byte) []byte {
	var b []byte
	body := 8 + sockIDSize
	if typ == tcpDiagGet {
		body = 4 + sockIDSize + 8
	}
	b = ne.AppendUint32(b, uint32(headerSize+body))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, dumpFlags)
	b = ne.AppendUint32(b, 1) // seq
	b = ne.AppendUint32(b, 0) // to the kernel
	if typ == tcpDiagGet {
		b = append(b, family, 0, 0, extInfo)
		b = append(b, make([]byte, sockIDSize)...)
		b = ne.AppendUint32(b, statesAll)
		return ne.AppendUint32(b, 0)
	}
	b = append(b, family, ipprotoTCP, extInfo, 0)
	b = ne.AppendUint32(b, statesAll)
	return append(b, make([]byte, sockIDSize)...)
}

// dump sends req and reads the reply to its end, counting sockets and bytes.
func dump(req []byte) (stats, error) {
	var s stats
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return s, fmt.Errorf("open sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return s, fmt.Errorf("send request: %w", err)
	}
	s.requests = 1
	buf := make([]byte, bufSize)
	for range maxDatagrams {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return s, fmt.Errorf("receive: %w", err)
		}
		s.bytes += n
		p := buf[:n]
		for len(p) >= headerSize {
			l := int(ne.Uint32(p[0:4]))
			if l < headerSize || l > len(p) {
				return s, fmt.Errorf("malformed netlink message of %d bytes", l)
			}
			switch ne.Uint16(p[4:6]) {
			case nlmsgDone:
				return s, nil
			case nlmsgError:
				if l >= headerSize+4 {
					if e := int32(ne.Uint32(p[16:20])); e < 0 {
						return s, syscall.Errno(-e)
					}
				}
				return s, nil
			default:
				s.sockets++
			}
			p = p[min((l+3)&^3, len(p)):]
		}
	}
	return s, errors.New("dump did not end")
}

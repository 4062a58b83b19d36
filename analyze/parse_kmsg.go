package analyze

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// KmsgLine is one kernel log record.
type KmsgLine struct {
	Priority int   // syslog priority and facility as /dev/kmsg gives it; -1 when unknown
	Seq      int64 // -1 when unknown
	Usec     int64 // microseconds since boot; -1 when unknown
	Message  string
}

// parseKmsg reads the kernel log tail. It accepts raw /dev/kmsg records
// ("prio,seq,usec,flags;message", continuation lines starting with a space
// are dropped), dmesg lines ("[  12.345678] message"), and anything else as a
// plain message.
func parseKmsg(r io.Reader) ([]KmsgLine, error) {
	var out []KmsgLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		if text[0] == ' ' && len(out) > 0 && strings.Contains(text, "=") {
			continue // /dev/kmsg dictionary continuation (" SUBSYSTEM=net")
		}
		out = append(out, parseKmsgLine(text))
	}
	if err := sc.Err(); err != nil {
		return out, err
	}
	return out, nil
}

func parseKmsgLine(text string) KmsgLine {
	l := KmsgLine{Priority: -1, Seq: -1, Usec: -1, Message: strings.TrimSpace(text)}
	if head, msg, ok := strings.Cut(text, ";"); ok {
		f := strings.Split(head, ",")
		if len(f) >= 3 {
			p, e1 := strconv.Atoi(f[0])
			s, e2 := strconv.ParseInt(f[1], 10, 64)
			u, e3 := strconv.ParseInt(f[2], 10, 64)
			if e1 == nil && e2 == nil && e3 == nil {
				l.Priority, l.Seq, l.Usec, l.Message = p, s, u, strings.TrimSpace(msg)
				return l
			}
		}
	}
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "<") {
		if end := strings.IndexByte(t, '>'); end > 0 {
			if p, err := strconv.Atoi(t[1:end]); err == nil {
				l.Priority = p
				t = strings.TrimSpace(t[end+1:])
			}
		}
	}
	if strings.HasPrefix(t, "[") {
		if end := strings.IndexByte(t, ']'); end > 0 {
			if sec, err := strconv.ParseFloat(strings.TrimSpace(t[1:end]), 64); err == nil && sec >= 0 && sec < 1e12 {
				l.Usec = int64(sec * 1e6)
				t = strings.TrimSpace(t[end+1:])
			}
		}
	}
	l.Message = t
	return l
}

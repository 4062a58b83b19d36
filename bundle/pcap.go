package bundle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// The packet sample (PathPackets) is a classic pcap file: a 24-byte file
// header, then one 16-byte record header before each captured frame. This
// file is its one codec: the writer the packet collector uses, and the
// reader that analyze and redact use, which refuses anything but classic
// pcap before reading past the magic number and stays within PcapLimits.

// Sizes of the pcap framing.
const (
	// PcapHeaderLen is the size of the pcap file header.
	PcapHeaderLen = 24
	// PcapRecordHeaderLen is the size of each record's header.
	PcapRecordHeaderLen = 16
)

// Magic numbers of classic pcap, as read little-endian from the first four
// bytes of the file: a writer stores 0xa1b2c3d4 (microsecond timestamps) or
// 0xa1b23c4d (nanosecond timestamps) in its own byte order.
const (
	pcapMagicMicro        = 0xa1b2c3d4
	pcapMagicNano         = 0xa1b23c4d
	pcapMagicMicroSwapped = 0xd4c3b2a1
	pcapMagicNanoSwapped  = 0x4d3cb2a1
)

// ErrNotPcap is wrapped when a packet sample is not a classic pcap file:
// gzip-compressed (which some pcap readers inflate without bound), pcapng,
// or anything else. It is a kind of ErrFormat: errors.Is(err, ErrFormat)
// holds too.
var ErrNotPcap error = &kindError{msg: "not a classic pcap file", parent: ErrFormat}

// LinkType is a pcap link type (LINKTYPE_* of the tcpdump.org registry): what
// the bytes of each record start with.
type LinkType uint16

// The link types snapdiag writes (LinuxSLL) and reads.
const (
	LinkNull      LinkType = 0   // BSD loopback: a 4-byte address family in host order
	LinkEthernet  LinkType = 1   // Ethernet II, 802.1Q tags included
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6, told apart by the version nibble
	LinkLoop      LinkType = 108 // OpenBSD loopback: a 4-byte address family in network order
	LinkLinuxSLL  LinkType = 113 // Linux "cooked" capture, 16-byte header
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux "cooked" capture v2, 20-byte header
)

// Known reports whether the link layer of lt is one this package decodes.
func (lt LinkType) Known() bool {
	switch lt {
	case LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2:
		return true
	}
	return false
}

// String is the link type's name in the tcpdump.org registry.
func (lt LinkType) String() string {
	switch lt {
	case LinkNull:
		return "NULL"
	case LinkEthernet:
		return "ETHERNET"
	case LinkRaw:
		return "RAW"
	case LinkLoop:
		return "LOOP"
	case LinkLinuxSLL:
		return "LINUX_SLL"
	case LinkIPv4:
		return "IPV4"
	case LinkIPv6:
		return "IPV6"
	case LinkLinuxSLL2:
		return "LINUX_SLL2"
	}
	return fmt.Sprintf("LINKTYPE_%d", uint16(lt))
}

// PcapHeader is what a pcap file header says.
type PcapHeader struct {
	// Order is the byte order of every header field of the file.
	Order binary.ByteOrder
	// Nanosecond is true when record timestamps count nanoseconds, false
	// for microseconds.
	Nanosecond bool
	// Snaplen is the most bytes of a packet a record holds.
	Snaplen  uint32
	LinkType LinkType
}

// PcapRecord is one captured frame.
type PcapRecord struct {
	Time time.Time
	// OrigLen is the frame's length on the wire; Data may hold less.
	OrigLen int
	// Data is the captured bytes, from the link header on.
	Data []byte
}

// PcapLimits bound what a PcapReader reads. A zero field takes its value
// from DefaultPcapLimits.
type PcapLimits struct {
	// MaxRecord bounds the captured bytes of one record, whatever the file
	// header's snap length says.
	MaxRecord int
	// MaxPackets bounds the records read.
	MaxPackets int
	// MaxBytes bounds the bytes of the file read, headers included.
	MaxBytes int64
}

// DefaultPcapLimits returns the limits a zero PcapLimits stands for: room
// for any sample snapdiag writes (at most 64 KiB of packet and 20 bytes of
// link header per record) within a bundle's member size.
func DefaultPcapLimits() PcapLimits {
	return PcapLimits{
		// libpcap's MAXIMUM_SNAPLEN: no capture tool writes longer records.
		MaxRecord:  256 << 10,
		MaxPackets: 4_000_000,
		MaxBytes:   DefaultLimits().MaxMemberSize,
	}
}

func (l PcapLimits) withDefaults() PcapLimits {
	d := DefaultPcapLimits()
	return PcapLimits{
		MaxRecord:  positiveOr(l.MaxRecord, d.MaxRecord),
		MaxPackets: positiveOr(l.MaxPackets, d.MaxPackets),
		MaxBytes:   positiveOr(l.MaxBytes, d.MaxBytes),
	}
}

// positiveOr is v when it is positive, else d.
func positiveOr[T int | int64](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// PcapReader reads the records of a classic pcap file within PcapLimits.
type PcapReader struct {
	r       *bufio.Reader
	hdr     PcapHeader
	lim     PcapLimits
	snaplen int // the record bound: the header's snap length, within MaxRecord
	read    int64
	packets int
	rec     [PcapRecordHeaderLen]byte
	buf     []byte
	err     error
}

// NewPcapReader reads the file header of the pcap in r. It checks the magic
// number before reading anything else, so a file that is not classic pcap
// (gzip, pcapng, text) costs four bytes; the error then wraps ErrNotPcap.
func NewPcapReader(r io.Reader, lim PcapLimits) (*PcapReader, error) {
	lim = lim.withDefaults()
	br := bufio.NewReaderSize(r, 64<<10)
	var head [PcapHeaderLen]byte
	if n, err := io.ReadFull(br, head[:4]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read pcap header: %w: empty file", ErrNotPcap)
		}
		return nil, fmt.Errorf("read pcap header: %w: %d bytes", ErrNotPcap, n)
	}
	var h PcapHeader
	switch binary.LittleEndian.Uint32(head[:4]) {
	case pcapMagicMicro:
		h.Order = binary.LittleEndian
	case pcapMagicNano:
		h.Order, h.Nanosecond = binary.LittleEndian, true
	case pcapMagicMicroSwapped:
		h.Order = binary.BigEndian
	case pcapMagicNanoSwapped:
		h.Order, h.Nanosecond = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("read pcap header: %w: magic %x%s", ErrNotPcap, head[:4], sniffPcap(head[:4]))
	}
	if _, err := io.ReadFull(br, head[4:]); err != nil {
		return nil, fmt.Errorf("read pcap header: %w", truncation(err))
	}
	if major := h.Order.Uint16(head[4:]); major != 2 {
		return nil, fmt.Errorf("read pcap header: %w: version %d.%d", ErrNotPcap, major, h.Order.Uint16(head[6:]))
	}
	h.Snaplen = h.Order.Uint32(head[16:])
	// The upper 16 bits of the field hold FCS and reserved flags.
	h.LinkType = LinkType(h.Order.Uint32(head[20:]) & 0xffff)
	p := &PcapReader{r: br, hdr: h, lim: lim, read: PcapHeaderLen}
	// libpcap takes a snap length of 0, or one past its maximum, to mean
	// the maximum; so do we.
	p.snaplen = lim.MaxRecord
	if h.Snaplen > 0 && uint64(h.Snaplen) < uint64(lim.MaxRecord) {
		p.snaplen = int(h.Snaplen)
	}
	return p, nil
}

// sniffPcap names the format of a packet sample that is not classic pcap.
func sniffPcap(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return " (gzip data)"
	case bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		return " (pcapng)"
	case bytes.Equal(magic, zstdMagic):
		return " (zstd data)"
	case bytes.HasPrefix(magic, []byte("BZh")):
		return " (bzip2 data)"
	case bytes.Equal(magic, []byte("\xfd7zX")):
		return " (xz data)"
	case bytes.Equal(magic, []byte("\x04\x22\x4d\x18")):
		return " (lz4 data)"
	}
	return ""
}

// truncation turns the end of the input inside a header or record into
// ErrTruncated.
func truncation(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// Header is the file header the reader read.
func (p *PcapReader) Header() PcapHeader { return p.hdr }

// LinkType is the link type of every record of the file.
func (p *PcapReader) LinkType() LinkType { return p.hdr.LinkType }

// Packets is the number of records read so far.
func (p *PcapReader) Packets() int { return p.packets }

// Next returns the next record. Its Data is only valid until the next call.
// At the end of the file it returns io.EOF; a record cut short is
// ErrTruncated, one longer than the snap length ErrCorrupt, and going past
// a limit ErrLimit. After an error every call returns it again.
func (p *PcapReader) Next() (PcapRecord, error) {
	if p.err != nil {
		return PcapRecord{}, p.err
	}
	rec, err := p.next()
	if err != nil {
		if err != io.EOF {
			err = fmt.Errorf("read pcap record %d: %w", p.packets+1, err)
		}
		p.err = err
	}
	return rec, err
}

func (p *PcapReader) next() (PcapRecord, error) {
	if p.packets >= p.lim.MaxPackets {
		// Only the end of the file may follow.
		if _, err := p.r.Peek(1); err == io.EOF {
			return PcapRecord{}, io.EOF
		}
		return PcapRecord{}, fmt.Errorf("%w: more than %d packets", ErrLimit, p.lim.MaxPackets)
	}
	if p.read+PcapRecordHeaderLen > p.lim.MaxBytes {
		if _, err := p.r.Peek(1); err == io.EOF {
			return PcapRecord{}, io.EOF
		}
		return PcapRecord{}, fmt.Errorf("%w: more than %d bytes", ErrLimit, p.lim.MaxBytes)
	}
	n, err := io.ReadFull(p.r, p.rec[:])
	if err != nil {
		if n == 0 && err == io.EOF {
			return PcapRecord{}, io.EOF
		}
		return PcapRecord{}, truncation(err)
	}
	p.read += PcapRecordHeaderLen
	o := p.hdr.Order
	sec, frac := o.Uint32(p.rec[0:]), o.Uint32(p.rec[4:])
	incl, orig := o.Uint32(p.rec[8:]), o.Uint32(p.rec[12:])
	switch {
	case uint64(incl) > uint64(p.lim.MaxRecord):
		return PcapRecord{}, fmt.Errorf("%w: record of %d bytes, more than %d", ErrLimit, incl, p.lim.MaxRecord)
	case int(incl) > p.snaplen:
		return PcapRecord{}, fmt.Errorf("%w: record of %d bytes, longer than the snap length %d", ErrCorrupt, incl, p.snaplen)
	case p.read+int64(incl) > p.lim.MaxBytes:
		return PcapRecord{}, fmt.Errorf("%w: more than %d bytes", ErrLimit, p.lim.MaxBytes)
	}
	if cap(p.buf) < int(incl) {
		p.buf = make([]byte, incl, max(int(incl), min(p.snaplen, 64<<10)))
	}
	p.buf = p.buf[:incl]
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		return PcapRecord{}, truncation(err)
	}
	p.read += int64(incl)
	p.packets++
	nsec := int64(frac)
	if !p.hdr.Nanosecond {
		nsec *= 1000
	}
	return PcapRecord{Time: time.Unix(int64(sec), nsec), OrigLen: int(orig), Data: p.buf}, nil
}

// PcapWriter writes a classic pcap file, little-endian.
type PcapWriter struct {
	w    io.Writer
	hdr  PcapHeader
	rec  [PcapRecordHeaderLen]byte
	size int64
}

// NewPcapWriter writes the file header h to w and returns a writer for its
// records. A nil h.Order is little-endian.
func NewPcapWriter(w io.Writer, h PcapHeader) (*PcapWriter, error) {
	if h.Order == nil {
		h.Order = binary.LittleEndian
	}
	magic := uint32(pcapMagicMicro)
	if h.Nanosecond {
		magic = pcapMagicNano
	}
	var b [PcapHeaderLen]byte
	o := h.Order
	o.PutUint32(b[0:], magic)
	o.PutUint16(b[4:], 2) // version 2.4
	o.PutUint16(b[6:], 4)
	// b[8:16]: time zone offset and timestamp accuracy, both always 0.
	o.PutUint32(b[16:], h.Snaplen)
	o.PutUint32(b[20:], uint32(h.LinkType))
	n, err := w.Write(b[:])
	if err != nil {
		return nil, fmt.Errorf("write pcap header: %w", err)
	}
	return &PcapWriter{w: w, hdr: h, size: int64(n)}, nil
}

// RecordSize is the bytes a record of n captured bytes adds to the file.
func RecordSize(n int) int64 { return PcapRecordHeaderLen + int64(n) }

// Size is the bytes written so far, the file header included.
func (pw *PcapWriter) Size() int64 { return pw.size }

// WriteRecord writes one record: data as captured, the frame's length on
// the wire (at least len(data)), and its time. data must fit the header's
// snap length.
func (pw *PcapWriter) WriteRecord(ts time.Time, origLen int, data []byte) error {
	// A snap length of 0 is no limit, as libpcap reads it.
	if pw.hdr.Snaplen != 0 && uint64(len(data)) > uint64(pw.hdr.Snaplen) {
		return fmt.Errorf("write pcap record: %d bytes, longer than the snap length %d", len(data), pw.hdr.Snaplen)
	}
	origLen = max(origLen, len(data))
	o := pw.hdr.Order
	frac := int64(ts.Nanosecond())
	if !pw.hdr.Nanosecond {
		frac /= 1000
	}
	o.PutUint32(pw.rec[0:], uint32(ts.Unix()))
	o.PutUint32(pw.rec[4:], uint32(frac))
	o.PutUint32(pw.rec[8:], uint32(len(data)))
	o.PutUint32(pw.rec[12:], uint32(min(int64(origLen), math.MaxUint32)))
	n, err := pw.w.Write(pw.rec[:])
	pw.size += int64(n)
	if err != nil {
		return fmt.Errorf("write pcap record: %w", err)
	}
	n, err = pw.w.Write(data)
	pw.size += int64(n)
	if err != nil {
		return fmt.Errorf("write pcap record: %w", err)
	}
	return nil
}

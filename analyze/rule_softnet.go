package analyze

import (
	"fmt"
	"sort"
	"strconv"
)

// SoftnetDrops diagnoses softnet-drops: packets dropped in the per-CPU
// backlog before TCP.
type SoftnetDrops struct {
	// Severity is critical above 100 drops a second.
	Severity Severity
	// Dropped is softnet_stat's column 2 summed over CPUs; TimeSqueeze is
	// column 3 (the NAPI budget ran out: busy, not a drop).
	Dropped, TimeSqueeze Delta
	// PerCPU are the CPUs whose drops rose, most first; empty when the
	// first and last samples have different CPU counts.
	PerCPU []CPUDrops
	// MaxBacklog is net.core.netdev_max_backlog (HaveMaxBacklog false
	// without it); RaiseTo is the value to set.
	MaxBacklog     int64
	HaveMaxBacklog bool
	RaiseTo        int64
}

// CPUDrops is one CPU's rise of softnet drops over the capture.
type CPUDrops struct {
	CPU     int
	Dropped uint64
}

// diagnoseSoftnet finds softnet-drops: column 2 of softnet_stat
// (sd->dropped) counts packets dropped by enqueue_to_backlog() when a CPU's
// backlog exceeds netdev_max_backlog, before TCP. It covers RPS and
// netif_rx paths, veth included. Column 3, time_squeeze, is not a drop.
func diagnoseSoftnet(s *Snapshot) *SoftnetDrops {
	d := &SoftnetDrops{Severity: Warning, Dropped: s.Delta(softnetDropped)}
	if !d.Dropped.Moved() {
		return nil
	}
	if d.Dropped.PerSecond > 100 {
		d.Severity = Critical
	}
	d.TimeSqueeze = s.Delta(softnetTimeSqueeze)
	d.PerCPU = softnetPerCPU(s)
	if v, ok := s.Sysctls.Int("net.core.netdev_max_backlog"); ok {
		d.MaxBacklog, d.HaveMaxBacklog, d.RaiseTo = v, true, max(2*v, 2000)
	}
	return d
}

func (d *SoftnetDrops) render(s *Snapshot) Finding {
	f := Finding{
		ID:       IDSoftnetDrops,
		Severity: d.Severity,
		Key:      "net.core.netdev_max_backlog",
		Title:    "Packets dropped in the per-CPU backlog before TCP (softnet)",
	}
	f.Evidence = append(f.Evidence, evDelta(d.Dropped, "softnet_stat column 2, summed over CPUs"))
	if len(d.PerCPU) > 0 {
		var parts []string
		for _, c := range d.PerCPU {
			parts = append(parts, fmt.Sprintf("cpu%d +%d", c.CPU, c.Dropped))
		}
		f.Evidence = append(f.Evidence, evValue(d.Dropped.Source, softnetDropped.String()+" by CPU", float64(d.Dropped.Delta), shortList(parts, 8)))
	}
	if d.TimeSqueeze.Moved() {
		f.Evidence = append(f.Evidence, evDelta(d.TimeSqueeze, "NAPI budget ran out: the CPU is busy with packets (not drops)"))
	}
	f.Summary = fmt.Sprintf("%s packets were dropped %s because a CPU's input backlog was longer than netdev_max_backlog. "+
		"They never reach TCP, so clients retransmit SYNs and data while the listen counters stay flat.", perSecond(d.Dropped), window(s))
	if d.HaveMaxBacklog {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.core.netdev_max_backlog", strconv.FormatInt(d.RaiseTo, 10),
			"a longer per-CPU backlog absorbs bursts; global to the host"))
	}
	f.Recommendations = append(f.Recommendations, note("host",
		"spread receive processing over more CPUs (RSS queues, RPS via /sys/class/net/IFACE/queues/rx-*/rps_cpus) and look for the CPU saturation behind it"))
	return f
}

// softnetPerCPU returns the per-CPU drop increments between the first and
// last sample that have softnet rows, most first.
func softnetPerCPU(s *Snapshot) []CPUDrops {
	var a, b []SoftnetCPU
	for _, sm := range s.Samples {
		if len(sm.Softnet) > 0 {
			if a == nil {
				a = sm.Softnet
			}
			b = sm.Softnet
		}
	}
	if len(a) != len(b) {
		return nil
	}
	var cs []CPUDrops
	for i := range a {
		if b[i].Dropped > a[i].Dropped {
			cs = append(cs, CPUDrops{i, b[i].Dropped - a[i].Dropped})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Dropped > cs[j].Dropped })
	return cs
}

// ruleNICRx finds nic-rx-drops: /proc/net/dev rx drop (which
// includes rx_missed_errors) and fifo rising on an interface. Drops of a few
// packets per million are also how some drivers count frames for unknown
// protocols, so low rates are info.
func ruleNICRx(s *Snapshot) []Finding {
	var ifaces []string
	for _, c := range s.Counters() {
		if n, ok := devRxDrop.iface(c); ok && n != "lo" {
			ifaces = append(ifaces, n)
		}
	}
	sort.Strings(ifaces)
	var ds []*NICRxDrops
	for _, n := range ifaces {
		if d := diagnoseNICRx(s, n); d != nil {
			ds = append(ds, d)
		}
	}
	return findings(s, ds...)
}

// NICRxDrops diagnoses nic-rx-drops: one interface dropping received
// packets.
type NICRxDrops struct {
	// Severity is critical above 1% of the interface's traffic lost,
	// warning above 0.1% or 10 a second, info below.
	Severity  Severity
	Interface string
	// Drop is rx_dropped + rx_missed_errors, Fifo the receive FIFO
	// overruns, Packets the packets received.
	Drop, Fifo, Packets Delta
	// Lost is Drop + Fifo; LostRatio is Lost over all packets that arrived
	// (0 without the packet count).
	Lost      int64
	LostRatio float64
}

func diagnoseNICRx(s *Snapshot, iface string) *NICRxDrops {
	d := &NICRxDrops{Interface: iface, Drop: s.Delta(devRxDrop.of(iface)), Fifo: s.Delta(devRxFifo.of(iface))}
	if !d.Drop.Moved() && !d.Fifo.Moved() {
		return nil
	}
	d.Packets = s.Delta(devRxPackets.of(iface))
	d.Lost = d.Drop.Delta + d.Fifo.Delta
	if d.Packets.OK && d.Packets.Delta+d.Lost > 0 {
		d.LostRatio = float64(d.Lost) / float64(d.Packets.Delta+d.Lost)
	}
	d.Severity = Info
	if d.LostRatio > 0.001 || d.Drop.PerSecond+d.Fifo.PerSecond > 10 {
		d.Severity = Warning
	}
	if d.LostRatio > 0.01 {
		d.Severity = Critical
	}
	return d
}

func (d *NICRxDrops) render(s *Snapshot) Finding {
	n := d.Interface
	f := Finding{
		ID:       IDNICRxDrops,
		Severity: d.Severity,
		Title:    fmt.Sprintf("Interface %s is dropping received packets", n),
	}
	f.Evidence = append(f.Evidence, evDelta(d.Drop, "rx_dropped + rx_missed_errors"))
	if d.Fifo.OK {
		f.Evidence = append(f.Evidence, evDelta(d.Fifo, "receive FIFO overruns"))
	}
	if d.Packets.OK {
		f.Evidence = append(f.Evidence, evDelta(d.Packets, fmt.Sprintf("%.3f%% of received packets lost", d.LostRatio*100)))
	}
	f.Summary = fmt.Sprintf("%s dropped %d received packets %s (%.3f%% of its traffic) before the stack could take them. "+
		"Ring buffers that are too small for bursts, interrupts on one busy CPU, or a saturated CPU are the usual causes; "+
		"on veth the drops include the softnet backlog's.", n, d.Lost, window(s), d.LostRatio*100)
	f.Recommendations = append(f.Recommendations, note("host",
		fmt.Sprintf("look at the NIC's own counters and ring size (ethtool -S %s, ethtool -g %s) and raise the RX ring with ethtool -G; spread IRQs with RSS", n, n),
		"ethtool -S "+n, "ethtool -g "+n))
	return f
}

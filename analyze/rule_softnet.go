package analyze

import (
	"fmt"
	"sort"
	"strconv"
)

// ruleSoftnet is R-SOFTNET (section 7, rule 8): column 2 of softnet_stat
// (sd->dropped) counts packets dropped by enqueue_to_backlog() when a CPU's
// backlog exceeds netdev_max_backlog, before TCP. It covers RPS and
// netif_rx paths, veth included. Column 3, time_squeeze, is not a drop.
func ruleSoftnet(s *Snapshot) []Finding {
	d := s.Delta(softnetDropped)
	if !d.Moved() {
		return nil
	}
	f := Finding{
		ID:       IDSoftnetDrops,
		Severity: Warning,
		Key:      "net.core.netdev_max_backlog",
		Title:    "Packets dropped in the per-CPU backlog before TCP (softnet)",
	}
	if d.PerSecond > 100 {
		f.Severity = Critical
	}
	f.Evidence = append(f.Evidence, evDelta(d, "softnet_stat column 2, summed over CPUs"))
	if per := softnetPerCPU(s); per != "" {
		f.Evidence = append(f.Evidence, evValue(d.Source, softnetDropped.String()+" by CPU", float64(d.Delta), per))
	}
	if sq := s.Delta(softnetTimeSqueeze); sq.Moved() {
		f.Evidence = append(f.Evidence, evDelta(sq, "NAPI budget ran out: the CPU is busy with packets (not drops)"))
	}
	f.Summary = fmt.Sprintf("%s packets were dropped %s because a CPU's input backlog was longer than netdev_max_backlog. "+
		"They never reach TCP, so clients retransmit SYNs and data while the listen counters stay flat.", perSecond(d), window(s))
	if v, ok := s.Sysctls.Int("net.core.netdev_max_backlog"); ok {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.core.netdev_max_backlog", strconv.FormatInt(max(2*v, 2000), 10),
			"a longer per-CPU backlog absorbs bursts; global to the host"))
	}
	f.Recommendations = append(f.Recommendations, note("host",
		"spread receive processing over more CPUs (RSS queues, RPS via /sys/class/net/IFACE/queues/rx-*/rps_cpus) and look for the CPU saturation behind it"))
	return []Finding{f}
}

// softnetPerCPU renders the per-CPU drop increments between the first and
// last sample that have softnet rows.
func softnetPerCPU(s *Snapshot) string {
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
		return ""
	}
	type cpu struct {
		i int
		d uint64
	}
	var cs []cpu
	for i := range a {
		if b[i].Dropped > a[i].Dropped {
			cs = append(cs, cpu{i, b[i].Dropped - a[i].Dropped})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].d > cs[j].d })
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("cpu%d +%d", c.i, c.d))
	}
	return shortList(parts, 8)
}

// ruleNICRx is R-NICRX (section 7, rule 8): /proc/net/dev rx drop (which
// includes rx_missed_errors) and fifo rising on an interface. Drops of a few
// packets per million are also how some drivers count frames for unknown
// protocols, so low rates are info.
func ruleNICRx(s *Snapshot) []Finding {
	var names []string
	for _, c := range s.Counters() {
		if n, ok := devRxDrop.iface(c); ok && n != "lo" {
			names = append(names, n)
		}
	}
	var out []Finding
	for _, n := range names {
		drop := s.Delta(devRxDrop.of(n))
		fifo := s.Delta(devRxFifo.of(n))
		if !drop.Moved() && !fifo.Moved() {
			continue
		}
		pk := s.Delta(devRxPackets.of(n))
		lost := drop.Delta + fifo.Delta
		ratio := 0.0
		if pk.OK && pk.Delta+lost > 0 {
			ratio = float64(lost) / float64(pk.Delta+lost)
		}
		sev := Info
		if ratio > 0.001 || drop.PerSecond+fifo.PerSecond > 10 {
			sev = Warning
		}
		if ratio > 0.01 {
			sev = Critical
		}
		f := Finding{
			ID:       IDNICRxDrops,
			Severity: sev,
			Title:    fmt.Sprintf("Interface %s is dropping received packets", n),
		}
		f.Evidence = append(f.Evidence, evDelta(drop, "rx_dropped + rx_missed_errors"))
		if fifo.OK {
			f.Evidence = append(f.Evidence, evDelta(fifo, "receive FIFO overruns"))
		}
		if pk.OK {
			f.Evidence = append(f.Evidence, evDelta(pk, fmt.Sprintf("%.3f%% of received packets lost", ratio*100)))
		}
		f.Summary = fmt.Sprintf("%s dropped %d received packets %s (%.3f%% of its traffic) before the stack could take them. "+
			"Ring buffers that are too small for bursts, interrupts on one busy CPU, or a saturated CPU are the usual causes; "+
			"on veth the drops include the softnet backlog's.", n, lost, window(s), ratio*100)
		f.Recommendations = append(f.Recommendations, note("host",
			fmt.Sprintf("look at the NIC's own counters and ring size (ethtool -S %s, ethtool -g %s) and raise the RX ring with ethtool -G; spread IRQs with RSS", n, n),
			"ethtool -S "+n, "ethtool -g "+n))
		out = append(out, f)
	}
	return out
}

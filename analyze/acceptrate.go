package analyze

// AcceptRate is the rate at which the kernel completed handshakes into
// accept queues over the capture (Tcp.PassiveOpens per second, every
// listener of the namespace together), a measure of the host's load; ok is
// false when fewer than two samples carry the counter or it went backwards.
func (s *Snapshot) AcceptRate() (perSecond float64, ok bool) {
	d := s.Delta(tcpPassiveOpens)
	if !d.OK || d.Seconds <= 0 {
		return 0, false
	}
	return round2(d.PerSecond), true
}

package tui

import "strings"

// sparkChars are the eight heights of a sparkline cell.
const sparkChars = "▁▂▃▄▅▆▇█"

// sparkline draws vals as at most width cells, one per value (the last
// ones when there are more), scaled to top (to the largest value when top
// is 0). A zero is the lowest bar, a value at or over top the highest.
func sparkline(vals []float64, top float64, width int) string {
	if width <= 0 || len(vals) == 0 {
		return ""
	}
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	if top <= 0 {
		for _, v := range vals {
			top = max(top, v)
		}
	}
	bars := []rune(sparkChars)
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if top > 0 && v > 0 {
			i = int(v/top*float64(len(bars)-1) + 0.5)
			i = min(max(i, 1), len(bars)-1)
		}
		b.WriteRune(bars[i])
	}
	return b.String()
}

// Package tui is snapdiag's terminal browser for one bundle: the findings of
// an analyze.Report first, then every piece of evidence behind them
// (listeners, counters, sysctls, sockets, packets, the raw members and the
// manifest), each a jump away from the finding that cites it.
//
// The shape follows soft-serve's pkg/ui: a shared Context (styles, keymap,
// size, the report and the bundle), components that are a model, their key
// help and a size (what only some views do, filtering, a detail level, a
// lazy load, a jump to a row, is an optional interface), and typed
// messages. Update never does I/O: every read of the
// bundle runs in a tea.Cmd and comes back as a message, so a bundle with
// hundreds of thousands of sockets never blocks a key press.
//
// The package reads what its caller already parsed and analysed (an
// analyze.Snapshot and its analyze.Report) and the bundle as an fs.FS,
// nothing else: it does not parse the bundle again, it works the same on a
// fresh capture and on a year-old file, and it never collects.
package tui

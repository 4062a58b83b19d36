package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/fleet"
	"github.com/snapdiag/snapdiag/ship"
	"github.com/spf13/cobra"
)

type fleetFlags struct {
	format      string
	since       string
	until       string
	host        string
	minSeverity string
	endpoint    string
	cacheDir    string
	jobs        int
	stats       bool
	tz          string
}

func newFleetCmd() *cobra.Command {
	var f fleetFlags
	cmd := &cobra.Command{
		Use:   "fleet SOURCE",
		Short: "Analyze every bundle of a fleet: incidents per host and day, recurring findings, half-open clients, load",
		Long: `Fleet reads every bundle under SOURCE, a directory tree (file:///DIR or a plain
path, as push --to file:///DIR writes it) or s3://BUCKET/PREFIX, analyzes
each in parallel, and reports across them:
  - incidents per host and day (the worst finding; a bundle with a warning or
    worse is an incident), and the hosts that never failed;
  - findings that recur in two bundles or more, with their hosts;
  - for SYN-queue incidents, the half-open client sources and their /24 or
    /48 prefixes, with incidents and hosts, classified on recurrence (a
    source or prefix is recurrent when it is seen in two incidents or more;
    captures of one host within 10 minutes of each other with a SYN-queue
    finding on a listener in common are one incident, for at most 1 hour
    from its first capture):
    one-incident-cannot-tell (sources named by one incident only),
    recurring-broken-clients (at most 10 recurrent sources with at least
    half the sightings, or sources each seen once within at most 10
    recurrent prefixes with half the prefix sightings, each showing at most
    4 addresses in any one incident: addresses rotating within a network;
    a prefix with more per incident is flood-like), distributed-flood (more than 10 sources, at least
    80% of the sightings by sources seen once, no such prefixes), mixed
    (none of these), no-half-open-clients (none, and a packet sample judged
    the handshakes: the application did not accept) or
    unknown-no-packet-sample (none, and no packet sample could tell);
  - each bundle's accepted-connection rate (Tcp.PassiveOpens per second),
    over its samples and over the watch history it carries, and the fleet's
    rate and incidents by hour of day with its busiest hours, to set
    incidents against load (UTC in JSON; --tz for the text and markdown).

The host is the HOSTNAME of the key PREFIX/HOSTNAME/NAME. Each bundle's
summary is cached by its SHA-256 under $XDG_CACHE_HOME/snapdiag/fleet, so a
second run analyzes only new bundles. A bundle is streamed to a temporary
file and hashed; a checksum the store claims that differs is a failure
(checksum-mismatch), never a cache lookup.

Exit status is analyze's for the worst finding in range: 0, 3 (warning),
4 (critical); 1 when a bundle in range could not be read (its range is
the capture time its name snapdiag-HOST-TIME.tar.zst carries; one whose
name carries none is counted whatever the range); 2 usage error (a bad
--format, --since, --until, --min-severity, --tz or --host glob).`,
		Example: `  snapdiag fleet s3://diag/prod --since 2026-11-01 --format markdown
  snapdiag fleet /srv/snapdiag --host 'imap*' --format json | jq .half_open`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFleet(cmd.Context(), f, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "text", "output format: text, json or markdown")
	fl.StringVar(&f.since, "since", "", "only bundles captured at or after this time (RFC 3339 or YYYY-MM-DD, UTC)")
	fl.StringVar(&f.until, "until", "", "only bundles captured before this time (RFC 3339 or YYYY-MM-DD, UTC)")
	fl.StringVar(&f.host, "host", "", "only hosts matching this glob")
	fl.StringVar(&f.minSeverity, "min-severity", "info", "count recurring findings at this severity or above: info, warning or critical")
	fl.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS S3)")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "cache directory (default $XDG_CACHE_HOME/snapdiag/fleet)")
	fl.IntVar(&f.jobs, "jobs", 0, "bundles read and analyzed at once (default: CPUs + 1)")
	fl.StringVar(&f.tz, "tz", "UTC", "zone of the text and markdown hour-of-day table: an IANA name (Europe/Paris), Local or UTC; JSON and the per-day table stay UTC")
	fl.BoolVar(&f.stats, "stats", false, "print on stderr how many bundles were analyzed and how many came from the cache")
	return cmd
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
	}
	return t, nil
}

func runFleet(ctx context.Context, f fleetFlags, source string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	format := strings.ToLower(f.format)
	switch format {
	case "text", "json", "markdown", "md":
	default:
		return usageError{fmt.Errorf("unknown --format %q (want text, json or markdown)", f.format)}
	}
	var filt fleet.Filter
	var err error
	if filt.MinSeverity, err = analyze.ParseSeverity(f.minSeverity); err != nil {
		return usageError{err}
	}
	if filt.Since, err = parseWhen(f.since); err != nil {
		return usageError{fmt.Errorf("--since: %w", err)}
	}
	if filt.Until, err = parseWhen(f.until); err != nil {
		return usageError{fmt.Errorf("--until: %w", err)}
	}
	if err := fleet.CheckHostGlob(f.host); err != nil {
		return usageError{err}
	}
	filt.HostGlob = f.host
	if filt.Zone, err = parseZone(f.tz); err != nil {
		return usageError{err}
	}
	if f.jobs < 0 {
		return usageError{fmt.Errorf("--jobs must not be negative")}
	}
	src, err := fleet.Open(source, ship.S3Options{Endpoint: f.endpoint})
	if err != nil {
		return usageError{err}
	}
	dir := f.cacheDir
	if dir == "" {
		if dir, err = fleet.DefaultCacheDir(); err != nil {
			return err
		}
	}
	results, st, err := fleet.Run(ctx, src, fleet.Options{Cache: fleet.Cache{Dir: dir}, Jobs: f.jobs})
	if err != nil {
		return err
	}
	if f.stats {
		fmt.Fprintf(stderr, "snapdiag: fleet: %d listed, %d read, %d analyzed, %d from the cache, %d failed (%d checksum mismatches)\n",
			st.Listed, st.Downloaded, st.Analyzed, st.Cached, st.Failed, st.Corrupt)
	}
	rep := fleet.Build(src.String(), results, filt)
	switch format {
	case "json":
		err = fleet.RenderJSON(stdout, rep)
	case "markdown", "md":
		err = fleet.RenderMarkdown(stdout, rep)
	default:
		err = fleet.RenderText(stdout, rep)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if rep.Exit != 0 {
		return exitStatus(rep.Exit)
	}
	return nil
}

// zoneinfo is where the system's IANA time zone database is.
const zoneinfo = "/usr/share/zoneinfo"

// completeZones offers UTC and Local, and the IANA zone names of the
// system's database that start with what is typed.
func completeZones(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	out := []cobra.Completion{
		cobra.CompletionWithDesc("UTC", "the default"),
		cobra.CompletionWithDesc("Local", "this machine's zone"),
	}
	if toComplete == "" {
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	_ = filepath.WalkDir(zoneinfo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(zoneinfo, p)
		switch {
		case d.IsDir() && (rel == "posix" || rel == "right"):
			return filepath.SkipDir
		case d.IsDir() || len(out) > 500:
			return nil
		}
		// Zone names start with a capital and have no dot; the database's
		// other files (zone.tab, tzdata.zi, leapseconds) do not.
		if c := path.Base(rel)[0]; c >= 'A' && c <= 'Z' && !strings.Contains(rel, ".") && strings.HasPrefix(rel, toComplete) {
			out = append(out, rel)
		}
		return nil
	})
	return out, cobra.ShellCompDirectiveNoFileComp
}

// parseZone is --tz's zone: an IANA name, "Local" or "UTC" ("" is UTC).
func parseZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("--tz %q: not an IANA time zone name, Local or UTC: %w", name, err)
	}
	return loc, nil
}

package selftest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/snapdiag/snapdiag/analyze"
)

// RenderText writes the result as a table: each incident, the diagnosis it
// must get, what snapdiag said (its findings above info, worst first) and
// pass or fail; then why any incident could not be run.
func RenderText(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "snapdiag selftest on kernel %s: %d incident(s) in throw-away network namespaces\n\n", r.Kernel, len(r.Incidents))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INCIDENT\tEXPECTED\tSNAPDIAG SAID\tRESULT")
	for _, i := range r.Incidents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Name, i.Expected, said(i), strings.ToUpper(string(i.Status)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, i := range r.Incidents {
		if i.Error != "" {
			fmt.Fprintf(w, "\n%s: %s\n", i.Name, i.Error)
		}
	}
	verdict := "all passed"
	if failed := r.Failed(); len(failed) > 0 {
		verdict = "FAILED: " + strings.Join(failed, ", ")
	}
	if r.Interrupted {
		verdict = "INTERRUPTED; " + verdict
	}
	_, err := fmt.Fprintf(w, "\n%s in %.1fs\n", verdict, r.Seconds)
	return err
}

// said is the SNAPDIAG SAID cell: the findings above info, or what stood in
// the way of a diagnosis.
func said(i IncidentResult) string {
	if i.Status == Error {
		return "(not diagnosed: see below)"
	}
	var parts []string
	for _, s := range i.Said {
		if s.Severity > analyze.Info {
			parts = append(parts, fmt.Sprintf("%s (%s)", s.ID, s.Severity))
		}
	}
	if len(parts) == 0 {
		return "nothing above info"
	}
	return strings.Join(parts, ", ")
}

// RenderJSON writes the result as one JSON object (schema Schema).
func RenderJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

package main

import (
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/snapdiag/snapdiag/schema"
	"github.com/spf13/cobra"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema [NAME]",
		Short: "Print the JSON Schema of one of snapdiag's JSON outputs",
		Long: `Print the JSON Schema (draft 2020-12) of one of snapdiag's JSON outputs, as
this build writes it; without NAME, list the names and what each describes.

The report (analyze --format json) and watch's --log-format json write one
document per line, and so does the socket table, sockets/tcp.jsonl: validate
each line on its own. Objects accept keys the schema does not name, and finding
ids accept names beside the ones listed: later versions only add them.`,
		Example: `  snapdiag schema
  snapdiag schema report > report.schema.json
  snapdiag analyze --format json bundle.tar.zst > report.json
  check-jsonschema --schemafile report.schema.json report.json`,
		// No ValidArgs: cobra would answer from it and never ask
		// completeSchemaNames, which also says nothing follows NAME.
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				for _, d := range schema.Docs() {
					fmt.Fprintf(tw, "%s\t%s\n", d.Name, d.Describes)
				}
				return tw.Flush()
			}
			if !slices.Contains(schema.Names(), args[0]) {
				return usageError{fmt.Errorf("no schema %q (run snapdiag schema for the list)", args[0])}
			}
			data, err := schema.Get(args[0])
			if err != nil {
				return err
			}
			_, err = out.Write(data)
			return err
		},
	}
}

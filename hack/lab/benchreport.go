package main

import (
	"flag"
	"fmt"
	"time"

	"vigil.dev/vigil/test/bench"
)

// publishReport writes a benchmark's report rep as JSON to out, puts its table between
// the markers start and end of the Markdown page doc, and prints the table and where both
// went.
func publishReport(out, doc string, rep any, table, start, end string) error {
	if err := bench.WriteJSON(out, rep); err != nil {
		return err
	}
	if err := bench.ReplaceSection(doc, start, end, table); err != nil {
		return err
	}
	fmt.Print("\n" + table)
	fmt.Printf("\nresults in %s and %s\n", out, doc)
	return nil
}

// reportFlags are the flags of a benchmark that publishes a report.
type reportFlags struct {
	out, doc, logs *string
	limit          *time.Duration
}

// addReportFlags declares them: out is the JSON's default path, what the doc's table and
// logs what --logs keeps.
func addReportFlags(fs *flag.FlagSet, out, outHelp, what, logs string) reportFlags {
	return reportFlags{
		out:   fs.String("out", out, outHelp),
		doc:   fs.String("doc", "docs/benchmarks.md", "Markdown page whose "+what+" table is regenerated"),
		logs:  fs.String("logs", "", "directory to copy "+logs+" to before teardown"),
		limit: fs.Duration("max", 20*time.Minute, "the whole command is stopped after this (the lab torn down)"),
	}
}

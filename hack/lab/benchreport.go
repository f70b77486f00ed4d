package main

import (
	"fmt"

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

package mpecsgostats

import (
	"fmt"
	"strings"
)

// Helpers for one-line messages.

// oneLine folds s, such as an error from a library, into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// abbreviate lists the first n of names, and how many more there are.
func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// truncate shortens s to n bytes and an ellipsis.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

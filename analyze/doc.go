// Package analyze turns a snapdiag bundle into a diagnosis: Load parses the
// bundle's members into a Snapshot, the rules read the Snapshot and return
// Findings with their evidence and kernel-specific recommendations, and the
// renderers print the resulting Report as text, JSON or Markdown.
//
// Every rule follows docs/kernel-listen-path.md (sections 1.5, 3, 4 and 7) in
// the shared design folder. Rules never read the live host: what they know
// comes from the Snapshot, so each is testable from a recorded fixture.
package analyze

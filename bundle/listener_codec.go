package bundle

import (
	"encoding/json"
	"fmt"
	"io"
)

// MaxListenersFile bounds a sample's listeners.json as DecodeListeners reads
// it: a host with 100,000 listeners writes some 30 MiB.
const MaxListenersFile = 64 << 20

// EncodeListeners encodes a sample's listeners.json (SampleListeners): a JSON
// array with one listener per line, so the file reads well with less and
// grep.
func EncodeListeners(ls []Listener) []byte {
	return encodeLines(ls, nil)
}

// DecodeListeners decodes a sample's listeners.json, reading at most
// MaxListenersFile bytes of r.
func DecodeListeners(r io.Reader) ([]Listener, error) {
	var ls []Listener
	dec := json.NewDecoder(io.LimitReader(r, MaxListenersFile))
	if err := dec.Decode(&ls); err != nil {
		return nil, fmt.Errorf("decode %s: %w", SampleListeners, err)
	}
	return ls, nil
}

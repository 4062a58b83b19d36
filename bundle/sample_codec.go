package bundle

import (
	"encoding/json"
	"fmt"
	"io"
)

// maxSampleTimeFile bounds a sample's time file as DecodeSampleTime reads
// it; the file is some 100 bytes.
const maxSampleTimeFile = 64 << 10

// EncodeSampleTime encodes a sample's time file (SampleTimeFile): indented
// JSON and a final newline.
func EncodeSampleTime(t SampleTime) []byte {
	data, _ := json.MarshalIndent(t, "", " ") // strings and integers always encode
	return append(data, '\n')
}

// DecodeSampleTime decodes a sample's time file, reading at most 64 KiB of r.
func DecodeSampleTime(r io.Reader) (SampleTime, error) {
	var t SampleTime
	if err := json.NewDecoder(io.LimitReader(r, maxSampleTimeFile)).Decode(&t); err != nil {
		return SampleTime{}, fmt.Errorf("decode sample %s: %w", SampleTimeFile, err)
	}
	return t, nil
}

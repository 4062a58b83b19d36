package collectors

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/snapdiag/snapdiag/bundle"
)

// maxProcFile bounds what one /proc or /sys file may contribute. The files
// read here are a few KiB; the bound keeps a hostile or broken file (a /proc
// copy in a test, a kernel bug) from eating the capture's memory.
const maxProcFile = 16 << 20

// readFile reads a kernel file whole, up to maxProcFile bytes. /proc files
// report size 0, so the size is not trusted.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProcFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxProcFile {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxProcFile)
	}
	return data, nil
}

// copyFile stores the kernel file at src as member name, exactly as read.
func copyFile(w *bundle.Writer, src, name string) error {
	data, err := readFile(src)
	if err != nil {
		return err
	}
	return w.WriteFile(name, data)
}

func writeJSON(w *bundle.Writer, name string, v any) error {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return w.WriteFile(name, append(data, '\n'))
}

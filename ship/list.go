package ship

import (
	"context"
	"io"

	"github.com/minio/minio-go/v7"
)

// Listed is one object of a listing: its key, size and ETag (which changes
// whenever the object is replaced, so a reader may cache on it).
type Listed struct {
	Key  string
	Size int64
	ETag string
}

// List calls each for every object under prefix ("" for the whole bucket),
// in one paginated ListObjectsV2 walk, stopping at the first error.
func (s *S3Store) List(ctx context.Context, prefix string, each func(Listed) error) error {
	if prefix != "" {
		prefix += "/"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return s.explain("list", prefix, o.Err)
		}
		if err := each(Listed{Key: o.Key, Size: o.Size, ETag: o.ETag}); err != nil {
			return err
		}
	}
	return nil
}

// Get streams the object under key; the caller closes it.
func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.explain("get", key, err)
	}
	if _, err := o.Stat(); err != nil {
		o.Close()
		return nil, s.explain("get", key, err)
	}
	return o, nil
}

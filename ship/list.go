package ship

import (
	"context"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// Listed is one object of a listing: its key, size, ETag and modification
// time (which change whenever the object is replaced, so a reader may
// cache on them; some stores list no ETag).
type Listed struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
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
		if err := each(Listed{Key: o.Key, Size: o.Size, ETag: o.ETag, LastModified: o.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// Endpoint is the store's endpoint URL, as the client reaches it.
func (s *S3Store) Endpoint() string { return s.client.EndpointURL().String() }

// Bucket is the store's bucket.
func (s *S3Store) Bucket() string { return s.bucket }

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

// Package ocilayout reads the per-platform images of a multi-arch image written as an OCI layout
// (`buildah manifest push --all NAME oci:DIR`, or `docker buildx build --output type=oci`).
package ocilayout

import (
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Image is one platform's image in a layout.
type Image struct {
	Platform v1.Platform
	Digest   v1.Hash  // of the image manifest
	Index    v1.Hash  // of the image index that lists it
	Image    v1.Image // read lazily from the layout's blobs
}

// Images returns every platform image in the layout at dir. Nested indexes are followed:
// buildah writes index.json → manifest list → one manifest per platform, buildx writes the
// platform manifests straight into index.json (plus attestation manifests, which are skipped).
func Images(dir string) ([]Image, error) {
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	rootDigest, err := root.Digest()
	if err != nil {
		return nil, err
	}
	var out []Image
	if err := walk(root, rootDigest, &out, 0); err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	return out, nil
}

func walk(idx v1.ImageIndex, digest v1.Hash, out *[]Image, depth int) error {
	if depth > 4 {
		return fmt.Errorf("image indexes nested more than 4 deep")
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return fmt.Errorf("index %s: %w", d.Digest, err)
			}
			if err := walk(child, d.Digest, out, depth+1); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("image %s: %w", d.Digest, err)
			}
			var p v1.Platform
			if d.Platform != nil {
				p = *d.Platform
			}
			*out = append(*out, Image{Platform: p, Digest: d.Digest, Index: digest, Image: img})
		default:
			return fmt.Errorf("%s: unexpected media type %q", d.Digest, d.MediaType)
		}
	}
	return nil
}

// Size is what an image weighs.
type Size struct {
	Layers       int
	Compressed   int64 // the layers as stored and pulled
	Uncompressed int64 // the layers' tar streams
	Config       int64
	Manifest     int64
}

// Pulled is what a pull of this platform's image downloads: manifest, config and layers.
func (s Size) Pulled() int64 { return s.Compressed + s.Config + s.Manifest }

// SizeOf measures img. Uncompressed sizes are counted by reading each layer through.
func SizeOf(img v1.Image) (Size, error) {
	var s Size
	var err error
	if s.Manifest, err = img.Size(); err != nil {
		return s, err
	}
	m, err := img.Manifest()
	if err != nil {
		return s, err
	}
	s.Config = m.Config.Size
	layers, err := img.Layers()
	if err != nil {
		return s, err
	}
	s.Layers = len(layers)
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return s, err
		}
		s.Compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			return s, err
		}
		n, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return s, err
		}
		s.Uncompressed += n
	}
	return s, nil
}

// MiB formats n bytes as mebibytes with one decimal.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

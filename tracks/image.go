package tracks

import (
	"fmt"
	"image"
)

// Image is a packed 8-bit RGB24 picture in host memory, the Go-native form
// of a video frame. Pixel (x, y) occupies Pix[y*Stride+3*x : y*Stride+3*x+3]
// as R, G, B; Stride is the distance in bytes between vertically adjacent
// pixels (0 means Width*3, tightly packed). Unlike image.RGBA, Pix starts at
// the image's top-left pixel, so a sub-image is Pix resliced with the same
// Stride (see SubImage): no copy. Package encode takes the same type
// (encode.Image is an alias).
//
// An Image does not own its pixels: whoever hands one to Emit keeps
// ownership and may reuse the buffer once Emit returns.
type Image struct {
	Pix           []byte
	Width, Height int
	Stride        int
}

// NewImage returns a tightly packed black w×h image.
func NewImage(w, h int) Image {
	return Image{Pix: make([]byte, w*h*3), Width: w, Height: h, Stride: w * 3}
}

// RowStride returns the distance in bytes between rows: Stride, or
// Width*3 when Stride is 0.
func (im Image) RowStride() int {
	if im.Stride == 0 {
		return im.Width * 3
	}
	return im.Stride
}

// Validate reports whether the image describes a complete RGB24 picture:
// positive size, a stride of at least Width*3, and enough bytes for every
// row. Its errors wrap ErrBadFrame and say what was expected.
func (im Image) Validate() error {
	if im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("%w: size %dx%d, want positive width and height", ErrBadFrame, im.Width, im.Height)
	}
	s := im.RowStride()
	if s < im.Width*3 {
		return fmt.Errorf("%w: stride %d < width*3 = %d", ErrBadFrame, s, im.Width*3)
	}
	if need := s*(im.Height-1) + im.Width*3; len(im.Pix) < need {
		return fmt.Errorf("%w: %d bytes for %dx%d RGB24 with stride %d, want at least %d", ErrBadFrame, len(im.Pix), im.Width, im.Height, s, need)
	}
	return nil
}

// SubImage returns the part of im inside r (in im's coordinates, clipped
// to im's bounds), sharing im's pixels. An empty intersection gives a
// zero-size Image.
func (im Image) SubImage(r image.Rectangle) Image {
	r = r.Intersect(image.Rect(0, 0, im.Width, im.Height))
	if r.Empty() {
		return Image{}
	}
	s := im.RowStride()
	off := r.Min.Y*s + r.Min.X*3
	end := (r.Max.Y-1)*s + r.Max.X*3
	return Image{Pix: im.Pix[off:end:end], Width: r.Dx(), Height: r.Dy(), Stride: s}
}

// copyPacked copies im's pixels into dst, tightly packed (len(dst) must be
// Width*Height*3).
func (im Image) copyPacked(dst []byte) {
	row, s := im.Width*3, im.RowStride()
	if s == row {
		copy(dst, im.Pix[:row*im.Height])
		return
	}
	for y := range im.Height {
		copy(dst[y*row:(y+1)*row], im.Pix[y*s:y*s+row])
	}
}

package main

import "image"

// The face filter's drawing: the webcam fitted into the output picture and
// what each filter mode draws over a face. Every function works in place on
// an RGB24 picture of demoW x demoH and allocates nothing.

// Filter modes of set_filter.
const (
	filterBoxes    = "boxes"
	filterBlur     = "blur"
	filterPixelate = "pixelate"
	filterOff      = "off"
)

// pixelBlock is the side of a pixelate cell, in output pixels. Cells sit
// on a fixed grid (multiples of pixelBlock), the encoder's 16×16
// macroblocks, so a pixelated face survives H.264 as flat cells.
const pixelBlock = 16

// fit is where a webcam picture of w×h lands in the output picture: scaled
// by s (aspect kept), centred, filling the height or the width; the rest
// keeps the pattern.
type fit struct {
	s    float64
	rect image.Rectangle
}

// fitCamera returns the placement of a w×h camera picture.
func fitCamera(w, h int) fit {
	s := min(float64(demoW)/float64(w), float64(demoH)/float64(h))
	dw, dh := int(float64(w)*s+0.5), int(float64(h)*s+0.5)
	x0, y0 := (demoW-dw)/2, (demoH-dh)/2
	return fit{s: s, rect: image.Rect(x0, y0, x0+dw, y0+dh)}
}

// toOutput maps a box in camera pixels to output pixels, clipped to the
// camera's rectangle.
func (f fit) toOutput(r image.Rectangle) image.Rectangle {
	o := f.rect.Min
	return image.Rect(
		o.X+int(float64(r.Min.X)*f.s+0.5), o.Y+int(float64(r.Min.Y)*f.s+0.5),
		o.X+int(float64(r.Max.X)*f.s+0.5), o.Y+int(float64(r.Max.Y)*f.s+0.5),
	).Intersect(f.rect)
}

// drawCamera copies cam into img at its fitted place, nearest neighbour.
func drawCamera(img []byte, cam *webcamFrame, f fit) {
	r := f.rect
	dw, dh := r.Dx(), r.Dy()
	for y := 0; y < dh; y++ {
		srow := cam.pix[(y*cam.h/dh)*cam.w*3:]
		drow := img[((r.Min.Y+y)*demoW+r.Min.X)*3:]
		for x := 0; x < dw; x++ {
			copy(drow[x*3:x*3+3], srow[(x*cam.w/dw)*3:])
		}
	}
}

// applyFilter draws mode over each face box (output pixels). scratch holds
// at least demoW*demoH*3 bytes; rgb is the colour of the boxes.
func applyFilter(img, scratch []byte, mode string, boxes []image.Rectangle, rgb [3]byte) {
	for _, b := range boxes {
		b = b.Intersect(image.Rect(0, 0, demoW, demoH))
		if b.Empty() {
			continue
		}
		switch mode {
		case filterBoxes:
			outline(img, b, 3, rgb)
		case filterBlur:
			radius := max(4, b.Dx()/10)
			for pass := 0; pass < 2; pass++ {
				blurRows(scratch, img, b, radius)
				blurCols(img, scratch, b, radius)
			}
		case filterPixelate:
			pixelate(img, b)
		}
	}
}

// outline draws a t pixels wide frame just inside b in colour c.
func outline(img []byte, b image.Rectangle, t int, c [3]byte) {
	for y := b.Min.Y; y < b.Max.Y; y++ {
		edgeY := y < b.Min.Y+t || y >= b.Max.Y-t
		for x := b.Min.X; x < b.Max.X; x++ {
			if edgeY || x < b.Min.X+t || x >= b.Max.X-t {
				copy(img[(y*demoW+x)*3:], c[:])
			}
		}
	}
}

// pixelate replaces the part of each pixelBlock grid cell inside b by its
// mean colour.
func pixelate(img []byte, b image.Rectangle) {
	for cy := b.Min.Y / pixelBlock * pixelBlock; cy < b.Max.Y; cy += pixelBlock {
		for cx := b.Min.X / pixelBlock * pixelBlock; cx < b.Max.X; cx += pixelBlock {
			c := image.Rect(cx, cy, cx+pixelBlock, cy+pixelBlock).Intersect(b)
			var sum [3]int
			for y := c.Min.Y; y < c.Max.Y; y++ {
				for x := c.Min.X; x < c.Max.X; x++ {
					p := img[(y*demoW+x)*3:]
					sum[0], sum[1], sum[2] = sum[0]+int(p[0]), sum[1]+int(p[1]), sum[2]+int(p[2])
				}
			}
			n := c.Dx() * c.Dy()
			mean := [3]byte{byte(sum[0] / n), byte(sum[1] / n), byte(sum[2] / n)}
			for y := c.Min.Y; y < c.Max.Y; y++ {
				for x := c.Min.X; x < c.Max.X; x++ {
					copy(img[(y*demoW+x)*3:], mean[:])
				}
			}
		}
	}
}

// blurRows writes into dst the horizontal box blur (2*radius+1 wide, edges
// clamped to b) of src's pixels inside b.
func blurRows(dst, src []byte, b image.Rectangle, radius int) {
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := y * demoW
		boxBlur(dst, src, row+b.Min.X, 1, b.Dx(), radius)
	}
}

// blurCols writes into dst the vertical box blur of src's pixels inside b.
func blurCols(dst, src []byte, b image.Rectangle, radius int) {
	for x := b.Min.X; x < b.Max.X; x++ {
		boxBlur(dst, src, b.Min.Y*demoW+x, demoW, b.Dy(), radius)
	}
}

// boxBlur blurs n pixels starting at pixel index start, step pixels apart,
// from src into dst with a running sum (clamped at both ends).
func boxBlur(dst, src []byte, start, step, n, radius int) {
	at := func(i int) []byte { return src[(start+min(max(i, 0), n-1)*step)*3:] }
	var sum [3]int
	for i := -radius; i <= radius; i++ {
		p := at(i)
		sum[0], sum[1], sum[2] = sum[0]+int(p[0]), sum[1]+int(p[1]), sum[2]+int(p[2])
	}
	w := 2*radius + 1
	for i := 0; i < n; i++ {
		d := dst[(start+i*step)*3:]
		d[0], d[1], d[2] = byte(sum[0]/w), byte(sum[1]/w), byte(sum[2]/w)
		in, out := at(i+radius+1), at(i-radius)
		sum[0] += int(in[0]) - int(out[0])
		sum[1] += int(in[1]) - int(out[1])
		sum[2] += int(in[2]) - int(out[2])
	}
}

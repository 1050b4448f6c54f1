package sds

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
)

// Delivery encodings of an export: how the service packed the XML DataSet.
const (
	EncodingIdentity = ""     // the XML as it is
	EncodingGzip     = "gzip" // Content-Encoding: gzip
	EncodingZip      = "zip"  // a ZIP archive holding one XML file (Microsoft's client accepts it)
)

// Limits on what an export may unpack to: the service's own cap is 300 MB
// uncompressed per data source; a ZIP's directory is a few hundred bytes.
const (
	maxUnpackedBytes = 1 << 30
	maxZipTrailer    = 1 << 20
)

// Delivery describes the bytes as they were received, when they differ
// from the XML the Export's Body yields. It is complete once Body has
// returned io.EOF.
type Delivery struct {
	Encoding    string // EncodingGzip or EncodingZip
	ContentType string // as the service sent it
	Bytes       int64  // received
	SHA256      string // hex, of the received bytes
	Entry       string // the ZIP entry's file name
}

// hashingReader counts and hashes what passes through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// unpackExport returns a reader of the XML inside body: body itself for
// plain XML, the gunzipped stream when the service said Content-Encoding
// gzip, and the single file's content for a ZIP archive, recognised by its
// signature. Memory stays bounded: nothing is buffered beyond a block.
func unpackExport(body io.Reader, contentEncoding, contentType string) (io.Reader, *Delivery, error) {
	raw := &hashingReader{r: body, h: sha256.New()}
	d := &Delivery{ContentType: contentType}
	finish := func() {
		d.Bytes, d.SHA256 = raw.n, hex.EncodeToString(raw.h.Sum(nil))
	}
	switch ce := strings.ToLower(strings.TrimSpace(contentEncoding)); ce {
	case "", "identity":
	case "gzip", "x-gzip":
		d.Encoding = EncodingGzip
		br := bufio.NewReaderSize(raw, 64<<10)
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, corrupt("gzip delivery: %v", err)
		}
		zr.Multistream(false)
		return &unpacked{r: zr, d: d, finish: finish, trailer: func() error { return drainEmpty(br) }}, d, nil
	default:
		return nil, nil, corrupt("unsupported Content-Encoding %q", truncate(contentEncoding, 40))
	}
	br := bufio.NewReaderSize(raw, 64<<10)
	sig, err := br.Peek(4)
	if err != nil || !bytes.Equal(sig, []byte("PK\x03\x04")) {
		// Plain XML (or something that will fail as XML): passed as it is.
		return br, nil, nil
	}
	d.Encoding = EncodingZip
	z, err := openZipEntry(br)
	if err != nil {
		return nil, nil, err
	}
	d.Entry = z.name
	return &unpacked{r: z, d: d, finish: finish, trailer: z.trailer}, d, nil
}

// unpacked yields the unpacked XML and settles the Delivery at its end.
type unpacked struct {
	r       io.Reader
	d       *Delivery
	n       int64
	finish  func()
	trailer func() error
	done    bool
}

func (u *unpacked) Read(p []byte) (int, error) {
	if u.done {
		return 0, io.EOF
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	if u.n > maxUnpackedBytes {
		return 0, corrupt("%s delivery unpacks to more than %d bytes", u.d.Encoding, maxUnpackedBytes)
	}
	if err == io.EOF {
		if terr := u.trailer(); terr != nil {
			return n, terr
		}
		u.finish()
		u.done = true
		return n, io.EOF
	}
	if err != nil {
		var se *Error
		if !errors.As(err, &se) {
			// A format error of the packing, not a broken connection.
			err = corrupt("%s delivery: %v", u.d.Encoding, err)
		}
	}
	return n, err
}

// drainEmpty requires the raw stream to end: nothing may follow a gzip
// member (a second member would be data nobody checked).
func drainEmpty(br *bufio.Reader) error {
	n, err := io.Copy(io.Discard, io.LimitReader(br, 1))
	if err != nil {
		return err
	}
	if n > 0 {
		return corrupt("gzip delivery has data after its first member")
	}
	return nil
}

func corrupt(format string, args ...any) error {
	return &Error{Class: ErrDecode, Op: "download data", Message: fmt.Sprintf(format, args...)}
}

// zipEntry streams the one file of a ZIP archive from its local header,
// without the central directory (which comes last): enough to check a
// single-file archive as it arrives.
type zipEntry struct {
	br         *bufio.Reader
	name       string
	data       io.Reader
	crc        hash.Hash32
	n          int64
	descriptor bool
	zip64      bool
	wantCRC    uint32
	wantSize   uint64
}

func openZipEntry(br *bufio.Reader) (*zipEntry, error) {
	var h [30]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	flags, method := le.Uint16(h[6:]), le.Uint16(h[8:])
	z := &zipEntry{br: br, crc: crc32.NewIEEE(), descriptor: flags&0x8 != 0, wantCRC: le.Uint32(h[14:]), wantSize: uint64(le.Uint32(h[22:]))}
	csize := uint64(le.Uint32(h[18:]))
	nameLen, extraLen := int(le.Uint16(h[26:])), int(le.Uint16(h[28:]))
	buf := make([]byte, nameLen+extraLen)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, err
	}
	z.name = string(buf[:nameLen])
	for extra := buf[nameLen:]; len(extra) >= 4; {
		id, size := le.Uint16(extra), int(le.Uint16(extra[2:]))
		if 4+size > len(extra) {
			break
		}
		if id == 0x0001 { // zip64: sizes in 8 bytes
			z.zip64 = true
			f := extra[4 : 4+size]
			if z.wantSize == 0xFFFFFFFF && len(f) >= 8 {
				z.wantSize, f = le.Uint64(f), f[8:]
			}
			if csize == 0xFFFFFFFF && len(f) >= 8 {
				csize = le.Uint64(f)
			}
		}
		extra = extra[4+size:]
	}
	switch {
	case flags&0x1 != 0:
		return nil, corrupt("zip delivery: the entry is encrypted")
	case strings.HasSuffix(z.name, "/"):
		return nil, corrupt("zip delivery: the first entry is a directory")
	}
	switch method {
	case 0:
		if z.descriptor {
			return nil, corrupt("zip delivery: a stored entry without its size")
		}
		z.data = io.LimitReader(br, int64(csize))
	case 8:
		// bufio.Reader is an io.ByteReader: flate reads no byte past the
		// compressed data, so the descriptor and directory follow.
		z.data = flate.NewReader(br)
	default:
		return nil, corrupt("zip delivery: compression method %d is not supported", method)
	}
	return z, nil
}

func (z *zipEntry) Read(p []byte) (int, error) {
	n, err := z.data.Read(p)
	z.crc.Write(p[:n])
	z.n += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = corrupt("zip delivery ends inside its entry")
	}
	return n, err
}

// trailer checks the entry's CRC and size, and that no second file
// follows; the directory after it is read and dropped.
func (z *zipEntry) trailer() error {
	le := binary.LittleEndian
	if z.descriptor {
		sig, err := z.br.Peek(4)
		if err != nil {
			return corrupt("zip delivery ends before its data descriptor")
		}
		if bytes.Equal(sig, []byte("PK\x07\x08")) {
			z.br.Discard(4)
		}
		n := 12
		if z.zip64 {
			n = 20
		}
		dd := make([]byte, n)
		if _, err := io.ReadFull(z.br, dd); err != nil {
			return corrupt("zip delivery ends inside its data descriptor")
		}
		z.wantCRC = le.Uint32(dd)
		if z.zip64 {
			z.wantSize = le.Uint64(dd[12:])
		} else {
			z.wantSize = uint64(le.Uint32(dd[8:]))
		}
	}
	if got := z.crc.Sum32(); got != z.wantCRC {
		return corrupt("zip delivery: the entry's CRC-32 is %08x, its header says %08x", got, z.wantCRC)
	}
	if uint64(z.n) != z.wantSize && z.wantSize != 0xFFFFFFFF {
		return corrupt("zip delivery: the entry has %d bytes, its header says %d", z.n, z.wantSize)
	}
	sig, err := z.br.Peek(4)
	if err != nil {
		return corrupt("zip delivery has no central directory")
	}
	switch {
	case bytes.Equal(sig, []byte("PK\x03\x04")):
		return corrupt("zip delivery holds more than one file")
	case !bytes.Equal(sig, []byte("PK\x01\x02")):
		return corrupt("zip delivery: no central directory after its entry")
	}
	n, err := io.Copy(io.Discard, io.LimitReader(z.br, maxZipTrailer+1))
	if err != nil {
		return err
	}
	if n > maxZipTrailer {
		return corrupt("zip delivery: more than %d bytes after its entry", maxZipTrailer)
	}
	return nil
}

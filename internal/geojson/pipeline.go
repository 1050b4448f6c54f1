package geojson

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/geoparquet"
	"github.com/sdsops/sdsops/internal/wkt"
)

// Parsing WKT and formatting coordinates cost several times what reading
// the XML does, so features are built on every CPU while the export is
// read, and written in the export's order. What is in flight is bounded
// in bytes, so memory stays small even for entities of 100,000-point
// geographies.
const (
	inFlightBytes = 8 << 20 // entity values read but not yet written
	keepBuffer    = 1 << 20 // larger job buffers are dropped after use
)

// tally counts geometries, per job and then for the conversion.
type tally struct {
	geometries              map[string]int64
	empty, invalid, missing int64
}

// job is one entity on its way to the output.
type job struct {
	raw  [][]byte
	vals []dataset.Value
	size int
	out  []byte
	t    tally
	done chan struct{}

	// The GeoParquet row, when one is written.
	pq      []byte
	geoms   []geoparquet.Geometry
	wkb     []byte
	scratch []byte
}

// convertFeatures writes the FeatureCollection of the entities rd yields.
func convertFeatures(ctx context.Context, rd *dataset.Reader, m *mapping, w io.Writer, st *Stats) error {
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := 4 * workers
	free := make(chan *job, jobs)
	for range jobs {
		j := &job{
			raw:  make([][]byte, len(m.schema.Columns)),
			vals: make([]dataset.Value, len(m.schema.Columns)),
			t:    tally{geometries: map[string]int64{}},
			done: make(chan struct{}, 1),
		}
		if m.pq != nil {
			j.geoms = make([]geoparquet.Geometry, len(m.pqGeoms))
		}
		free <- j
	}
	work := make(chan *job, jobs)
	order := make(chan *job, jobs)
	budget := newBudget(inFlightBytes)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var cv wkt.Converter
			for j := range work {
				j.out = m.appendFeature(j.out[:0], j, &cv)
				if m.pq != nil {
					m.parquetRow(j, &cv)
				}
				j.done <- struct{}{}
			}
		})
	}

	failed := make(chan struct{}) // closed when writing fails
	var (
		writeErr error
		readErr  error // set before order is closed
	)
	written := make(chan struct{})
	go func() {
		defer close(written)
		bw := bufio.NewWriterSize(w, 256<<10)
		_, writeErr = bw.WriteString(`{"type":"FeatureCollection","features":[`)
		for j := range order {
			<-j.done
			if writeErr == nil {
				sep := ",\n"
				if st.Features == 0 {
					sep = "\n"
				}
				if _, writeErr = bw.WriteString(sep); writeErr == nil {
					_, writeErr = bw.Write(j.out)
				}
				if writeErr == nil && m.pq != nil {
					writeErr = m.pq.Add(j.pq, j.geoms)
				}
				if writeErr != nil {
					close(failed)
				}
			}
			st.Features++
			st.add(&j.t)
			budget.release(min(j.size, inFlightBytes))
			if cap(j.out) > keepBuffer {
				j.out = nil
			}
			if cap(j.pq) > keepBuffer || cap(j.wkb) > keepBuffer || cap(j.scratch) > keepBuffer {
				j.pq, j.wkb, j.scratch = nil, nil, nil
			}
			if j.size > keepBuffer {
				clear(j.raw)
			}
			free <- j
		}
		// A collection cut short by a read error is left without its end.
		if writeErr == nil && readErr == nil {
			if _, writeErr = bw.WriteString("\n]}\n"); writeErr == nil {
				writeErr = bw.Flush()
			}
		}
	}()

	readErr = func() error {
		for n := 0; ; n++ {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading export after %d entities: %w", n, err)
			}
			var j *job
			select {
			case <-failed:
				return nil // the writer's error is the one to report
			case <-ctx.Done():
				return ctx.Err()
			case j = <-free:
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			j.size = 0
			for i := range j.vals {
				v := rec.Value(i)
				j.raw[i] = append(j.raw[i][:0], v.Raw...)
				v.Raw = j.raw[i]
				j.vals[i] = v
				j.size += len(v.Raw)
			}
			if err := budget.acquire(ctx, min(j.size, inFlightBytes)); err != nil {
				return err
			}
			order <- j
			work <- j
		}
	}()
	close(work)
	close(order)
	<-written
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	if writeErr != nil {
		return fmt.Errorf("writing GeoJSON: %w", writeErr)
	}
	return nil
}

func (st *Stats) add(t *tally) {
	for typ, n := range t.geometries {
		st.Geometries[typ] += n
	}
	clear(t.geometries)
	st.Empty += t.empty
	st.Invalid += t.invalid
	st.Missing += t.missing
	t.empty, t.invalid, t.missing = 0, 0, 0
}

// budget is a counting semaphore of bytes.
type budget struct {
	mu    sync.Mutex
	freed sync.Cond
	left  int
}

func newBudget(n int) *budget {
	b := &budget{left: n}
	b.freed.L = &b.mu
	return b
}

// acquire waits until n bytes are free, or ctx is done.
func (b *budget) acquire(ctx context.Context, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left < n {
		stop := context.AfterFunc(ctx, func() {
			b.mu.Lock()
			b.freed.Broadcast()
			b.mu.Unlock()
		})
		defer stop()
	}
	for b.left < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.freed.Wait()
	}
	b.left -= n
	return nil
}

func (b *budget) release(n int) {
	b.mu.Lock()
	b.left += n
	b.mu.Unlock()
	b.freed.Signal()
}

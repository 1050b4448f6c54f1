package geojson

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/geoparquet"
	"github.com/sdsops/sdsops/internal/wkt"
)

// Parsing WKT and formatting coordinates cost several times what reading
// the XML does, so features are built on several CPUs while the export
// is read, and written in the export's order. Entities travel in batches:
// handing each one from goroutine to goroutine cost more CPU than
// converting it on a single CPU. What is in flight is bounded in bytes,
// so memory stays small even for entities of 100,000-point geographies.
const (
	inFlightBytes = 8 << 20   // batches read but not yet written, with what is made of them
	batchBytes    = 128 << 10 // a batch's values, unless one entity alone is larger
	batchEntities = 256       // and at most this many entities
	batchValues   = 8192      // and values (entities × columns, 40 bytes each)
	keepBuffer    = 1 << 20   // larger job buffers are dropped after use
	// Four workers keep pace with the reader; more would only add
	// batches, and their buffers, in flight.
	maxWorkers = 4
)

// tally counts geometries, per job and then for the conversion.
type tally struct {
	geometries              map[string]int64
	empty, invalid, missing int64
}

// job is a batch of consecutive entities on their way to the output.
type job struct {
	first int64           // the export's index of the batch's first entity
	n     int             // entities in the batch
	raw   []byte          // their values' text, one after another
	all   []dataset.Value // their values, n × columns, in raw
	out   []byte          // their features, each after its separator
	t     tally
	done  chan struct{}

	// The entity being converted: its values and GeoParquet geometries,
	// windows of all and allGeoms.
	vals  []dataset.Value
	geoms []geoparquet.Geometry

	// The GeoParquet rows, when they are written: one after another in
	// pq, row k ending at rowEnds[k], its geometries at allGeoms[k×g:]
	// with their WKB in wkb.
	pq       []byte
	rowEnds  []int
	allGeoms []geoparquet.Geometry
	wkb      []byte
	scratch  []byte
}

// entity makes entity k of the batch the one being converted.
func (j *job) entity(k, cols, geoms int) {
	j.vals = j.all[k*cols : (k+1)*cols : (k+1)*cols]
	if j.allGeoms != nil {
		j.geoms = j.allGeoms[k*geoms : (k+1)*geoms : (k+1)*geoms]
	}
}

// convert builds the batch's features and GeoParquet rows.
func (j *job) convert(m *mapping, cv *wkt.Converter) {
	cols, geoms := len(m.schema.Columns), len(m.pqGeoms)
	// The features take about as many bytes as the values, the WKB about
	// three quarters of its WKT (16 bytes for a position written in 22 to
	// 25) and a GeoParquet row about the values' bytes: grown at once, a
	// huge entity's leave no trail of smaller copies.
	size := len(j.raw)
	j.out = slices.Grow(j.out[:0], size+size/8)
	j.wkb = slices.Grow(j.wkb[:0], size*3/4)
	j.pq, j.rowEnds = j.pq[:0], j.rowEnds[:0]
	if m.pq != nil {
		j.pq = slices.Grow(j.pq, size)
		j.allGeoms = slices.Grow(j.allGeoms[:0], j.n*geoms)[:j.n*geoms]
	}
	for k := range j.n {
		j.entity(k, cols, geoms)
		if j.first+int64(k) == 0 {
			j.out = append(j.out, '\n')
		} else {
			j.out = append(j.out, ",\n"...)
		}
		j.out = m.appendFeature(j.out, j, cv)
		if m.pq != nil {
			m.parquetRow(j, cv)
			j.rowEnds = append(j.rowEnds, len(j.pq))
		}
	}
}

// entitySize is the length of the values of rec.
func entitySize(rec *dataset.Record, cols int) int {
	n := 0
	for i := range cols {
		n += len(rec.Value(i).Raw)
	}
	return n
}

// add appends the entity rec, of size bytes of values, to the batch,
// copying its values.
func (j *job) add(rec *dataset.Record, cols, size int) {
	// Grown once per entity, so that a huge one leaves no trail of smaller
	// copies. The values of entities added before keep the array they were
	// copied to, which nothing writes again.
	j.raw = slices.Grow(j.raw, size)
	for i := range cols {
		v := rec.Value(i)
		if v.Present {
			start := len(j.raw)
			j.raw = append(j.raw, v.Raw...)
			v.Raw = j.raw[start:len(j.raw):len(j.raw)]
		}
		j.all = append(j.all, v)
	}
	j.n++
}

// reset empties the batch for reuse, dropping buffers a huge entity
// made large.
func (j *job) reset() {
	if cap(j.raw) > keepBuffer {
		j.raw = nil
		clear(j.all[:cap(j.all)])
	}
	if cap(j.out) > keepBuffer {
		j.out = nil
	}
	if cap(j.pq) > keepBuffer || cap(j.wkb) > keepBuffer || cap(j.scratch) > keepBuffer {
		j.pq, j.wkb, j.scratch = nil, nil, nil
		clear(j.allGeoms[:cap(j.allGeoms)])
	}
	j.n, j.raw, j.all = 0, j.raw[:0], j.all[:0]
}

// write writes the batch's features to w and its rows to m.pq.
func (j *job) write(m *mapping, w io.Writer) error {
	if _, err := w.Write(j.out); err != nil {
		return fmt.Errorf("writing GeoJSON: %w", err)
	}
	if m.pq == nil {
		return nil
	}
	geoms, start := len(m.pqGeoms), 0
	for k, end := range j.rowEnds {
		if err := m.pq.Add(j.pq[start:end], j.allGeoms[k*geoms:(k+1)*geoms]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// convertFeatures writes the FeatureCollection of the entities rd yields.
// w gets the features in writes of whole batches, so it needs no buffer.
func convertFeatures(ctx context.Context, rd *dataset.Reader, m *mapping, w io.Writer, st *Stats) error {
	workers := min(maxWorkers, max(1, runtime.GOMAXPROCS(0)))
	jobs := 4 * workers
	cols := len(m.schema.Columns)
	// Values are counted too: an export of hundreds of mostly omitted
	// columns holds few bytes of text but many values.
	perBatch := max(1, min(batchEntities, batchValues/max(cols, 1)))
	// A batch in flight holds its values and what is made of them: about
	// as many bytes of features and three quarters as many of WKB, and
	// with GeoParquet its rows, about as many again. Counted so, entities
	// of several megabytes are converted one or two at a time.
	weight := 3
	if m.pq != nil {
		weight = 4
	}
	cost := func(j *job) int { return min(len(j.raw)*weight, inFlightBytes) }
	free := make(chan *job, jobs)
	for range jobs {
		free <- &job{t: tally{geometries: map[string]int64{}}, done: make(chan struct{}, 1)}
	}
	work := make(chan *job, jobs)
	order := make(chan *job, jobs)
	budget := newBudget(inFlightBytes)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var cv wkt.Converter
			for j := range work {
				if ctx.Err() == nil {
					j.convert(m, &cv)
				}
				j.done <- struct{}{}
			}
		})
	}

	failed := make(chan struct{}) // closed when writing fails
	var (
		writeErr error
		stopErr  error // ctx's, when the writer saw it end
		readErr  error // set before order is closed
	)
	written := make(chan struct{})
	go func() {
		defer close(written)
		if _, err := io.WriteString(w, `{"type":"FeatureCollection","features":[`); err != nil {
			writeErr = fmt.Errorf("writing GeoJSON: %w", err)
			close(failed)
		}
		for j := range order {
			<-j.done
			if writeErr == nil && stopErr == nil {
				// Batches in flight when ctx ends are not written.
				if stopErr = ctx.Err(); stopErr != nil {
					close(failed)
				} else if writeErr = j.write(m, w); writeErr != nil {
					close(failed)
				}
			}
			if stopErr == nil {
				st.Features += int64(j.n)
				st.add(&j.t)
			}
			budget.release(cost(j))
			j.reset()
			free <- j
		}
		// A collection cut short by a read error is left without its end.
		if writeErr == nil && stopErr == nil && readErr == nil {
			if _, err := io.WriteString(w, "\n]}\n"); err != nil {
				writeErr = fmt.Errorf("writing GeoJSON: %w", err)
			}
		}
	}()

	// send hands the batch j, if it holds entities, to a worker and the
	// writer.
	send := func(j *job) error {
		if j.n == 0 {
			free <- j
			return nil
		}
		if err := budget.acquire(ctx, cost(j)); err != nil {
			return err
		}
		order <- j
		work <- j
		return nil
	}
	readErr = func() error {
		var (
			n    int64
			rec  *dataset.Record // read, not yet in a batch
			size int
		)
		for {
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
			j.first = n
			for j.n < perBatch {
				if rec == nil {
					select {
					case <-ctx.Done():
						return ctx.Err()
					default:
					}
					var err error
					rec, err = rd.Next()
					if errors.Is(err, io.EOF) {
						return send(j)
					}
					if err != nil {
						return fmt.Errorf("reading export after %d entities: %w", n, err)
					}
					size = entitySize(rec, cols)
				}
				// A large entity goes alone in a batch of its own.
				if j.n > 0 && len(j.raw)+size > batchBytes {
					break
				}
				j.add(rec, cols, size)
				rec = nil
				n++
			}
			if err := send(j); err != nil {
				return err
			}
		}
	}()
	close(work)
	close(order)
	<-written
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	if stopErr != nil {
		return stopErr
	}
	if writeErr != nil {
		return writeErr // the GeoJSON's or the GeoParquet spill's
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

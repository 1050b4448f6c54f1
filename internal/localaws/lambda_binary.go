package localaws

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// BinaryFunction is a function implemented by an executable that speaks the Lambda Runtime
// API, such as a Go bootstrap built with -tags lambda.norpc.
type BinaryFunction struct {
	// Path of the executable.
	Path string
	// Env is added to (and overrides) the environment Lambda gives a function.
	Env map[string]string
	// Timeout per invocation; default DefaultTimeout. On timeout the process is killed and
	// the invocation fails with errorType Sandbox.Timedout.
	Timeout time.Duration
	// InitTimeout bounds the time from process start to its first request for work;
	// default 10 s, as on Lambda.
	InitTimeout time.Duration
	// MemoryMB is reported as AWS_LAMBDA_FUNCTION_MEMORY_SIZE; default 128.
	MemoryMB int
	// MaxInstances caps the warm processes, i.e. the concurrent invocations (a Step
	// Functions Map state invokes in parallel); default 4. Excess invocations wait.
	MaxInstances int
}

// RegisterBinary registers an executable under name. Processes start on demand: one per
// concurrent invocation, kept warm for the next, up to fn.MaxInstances. Registering a name
// again replaces the earlier function and stops its processes.
func (e *LambdaEndpoint) RegisterBinary(name string, fn BinaryFunction) error {
	path, err := filepath.Abs(fn.Path)
	if err != nil {
		return fmt.Errorf("localaws: function %s: %w", name, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("localaws: function %s: %w", name, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("localaws: function %s: %s is not an executable file", name, path)
	}
	fn.Path = path
	if fn.Timeout <= 0 {
		fn.Timeout = DefaultTimeout
	}
	if fn.InitTimeout <= 0 {
		fn.InitTimeout = 10 * time.Second
	}
	if fn.MemoryMB <= 0 {
		fn.MemoryMB = 128
	}
	if fn.MaxInstances <= 0 {
		fn.MaxInstances = 4
	}
	p := &binaryPool{
		name:  name,
		cfg:   fn,
		ep:    e,
		slots: make(chan struct{}, fn.MaxInstances),
		all:   make(map[*instance]struct{}),
	}
	p.timeout.Store(int64(fn.Timeout))
	return e.register(name, p)
}

// SetTimeout changes the invocation timeout of the binary function name for the
// invocations that start from now on. Unlike registering it again, it stops no process:
// invocations in flight keep their deadline.
func (e *LambdaEndpoint) SetTimeout(name string, d time.Duration) error {
	p, ok := e.lookup(name).(*binaryPool)
	if !ok {
		return fmt.Errorf("localaws: no binary function %q", name)
	}
	if d <= 0 {
		d = DefaultTimeout
	}
	p.timeout.Store(int64(d))
	return nil
}

// binaryPool runs one function's invocations on warm runtime processes.
type binaryPool struct {
	name  string
	cfg   BinaryFunction
	ep    *LambdaEndpoint
	slots chan struct{} // one token per invocation in flight, at most MaxInstances
	// timeout of the invocations that start next; cfg.Timeout until SetTimeout.
	timeout atomic.Int64

	mu     sync.Mutex
	idle   []*instance
	all    map[*instance]struct{}
	seq    int
	closed bool
}

var errPoolClosed = errors.New("function stopped (endpoint closed or function replaced)")

func (p *binaryPool) run(inv *invocation) result {
	p.slots <- struct{}{}
	defer func() { <-p.slots }()
	started := time.Now()
	inv.timeout = time.Duration(p.timeout.Load())
	for attempt := 0; ; attempt++ {
		inst, fresh, err := p.take()
		if err != nil {
			errType := "Runtime.InvalidEntrypoint" // the executable could not be started
			if errors.Is(err, errPoolClosed) {
				errType = "Runtime.ExitError"
			}
			msg := fmt.Sprintf("RequestId: %s Error: %v", inv.id, err)
			return result{errType: errType, errMsg: msg, errBody: errorBody(errType, msg), started: started}
		}
		res, delivered := inst.serve(inv, p.cfg.InitTimeout)
		res.instance, res.started = inst.id, started
		p.put(inst)
		// A warm process that died while idle never saw the invocation: run it on a new
		// one. A fresh process that dies before asking for work fails the invocation.
		if !delivered && !fresh && attempt == 0 {
			continue
		}
		return res
	}
}

// take returns an idle live process, or starts a new one.
func (p *binaryPool) take() (inst *instance, fresh bool, err error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		inst = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if inst.alive() {
			p.mu.Unlock()
			return inst, false, nil
		}
		delete(p.all, inst)
		go inst.stop() // it has exited already; this only releases its server
	}
	if p.closed {
		p.mu.Unlock()
		return nil, false, errPoolClosed
	}
	p.seq++
	id := p.seq
	p.mu.Unlock()

	inst, err = startInstance(p, id)
	if err != nil {
		return nil, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		go inst.stop()
		return nil, false, errPoolClosed
	}
	p.all[inst] = struct{}{}
	return inst, true, nil
}

// put returns a process after an invocation: kept if alive, discarded otherwise.
func (p *binaryPool) put(inst *instance) {
	p.mu.Lock()
	if inst.alive() && !p.closed {
		p.idle = append(p.idle, inst)
		p.mu.Unlock()
		return
	}
	delete(p.all, inst)
	p.mu.Unlock()
	inst.stop()
}

// kill ends every live process at once; see LambdaEndpoint.Kill.
func (p *binaryPool) kill() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for inst := range p.all {
		if inst.alive() {
			inst.kill()
			n++
		}
	}
	return n
}

func (p *binaryPool) close() {
	p.mu.Lock()
	p.closed = true
	all := p.all
	p.all = map[*instance]struct{}{}
	p.idle = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for inst := range all {
		wg.Go(inst.stop)
	}
	wg.Wait()
}

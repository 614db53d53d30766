package agentconn

import (
	"hash/maphash"
	"sync"
)

// connShards is the live connection per node, split over shards by node
// id. One map under one lock made a mass disconnect (every agent of a
// restarting network, or a server's own shutdown) a convoy: thousands of
// goroutines queued for the same write lock, each handed it while still
// waiting for a CPU, and the server's other readers (lookups, event
// publishing) queued behind them. A mutex profile of 2,000 agents hanging
// up at once put 72% of all lock waiting there.
type connShards struct {
	seed   maphash.Seed
	shards [connShardCount]connShard
}

const connShardCount = 64

type connShard struct {
	mu sync.RWMutex
	m  map[string]*conn
}

func newConnShards() *connShards {
	cs := &connShards{seed: maphash.MakeSeed()}
	for i := range cs.shards {
		cs.shards[i].m = map[string]*conn{}
	}
	return cs
}

func (cs *connShards) shard(nodeID string) *connShard {
	return &cs.shards[maphash.String(cs.seed, nodeID)%connShardCount]
}

func (cs *connShards) get(nodeID string) *conn {
	sh := cs.shard(nodeID)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[nodeID]
}

// put makes c its node's live connection and returns the one it replaced.
func (cs *connShards) put(c *conn) *conn {
	sh := cs.shard(c.nodeID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := sh.m[c.nodeID]
	sh.m[c.nodeID] = c
	return old
}

// remove drops c if it is still its node's live connection.
func (cs *connShards) remove(c *conn) bool {
	sh := cs.shard(c.nodeID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[c.nodeID] == c {
		delete(sh.m, c.nodeID)
		return true
	}
	return false
}

// all lists every live connection, each shard as of when it was read.
func (cs *connShards) all() []*conn {
	var out []*conn
	for i := range cs.shards {
		sh := &cs.shards[i]
		sh.mu.RLock()
		for _, c := range sh.m {
			out = append(out, c)
		}
		sh.mu.RUnlock()
	}
	return out
}

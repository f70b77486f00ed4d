// Package fuzzrand lets a fuzz target draw a whole random input (an agent's observation,
// an election) from the bytes the fuzzer mutates: the target's check gets a generator
// seeded by them, so every input the fuzzer tries, or a failing one it saved, is replayed
// exactly.
package fuzzrand

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// Fuzz adds seeds to f's corpus and runs check on every input with a generator seeded by
// it (see New).
func Fuzz(f *testing.F, seeds []uint64, check func(t *testing.T, r *rand.Rand)) {
	for _, seed := range seeds {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, seed)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, New(data))
	})
}

// New is a generator seeded by the first 16 bytes of data (zero-padded).
func New(data []byte) *rand.Rand {
	seed := make([]byte, 16)
	copy(seed, data)
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed), binary.LittleEndian.Uint64(seed[8:])))
}

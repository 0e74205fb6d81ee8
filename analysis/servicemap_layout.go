package analysis

import (
	"cmp"
	"math"
	"slices"
)

// LayoutMap sorts nodes by id and places them in layers (columns) and rows, deterministically
// (Sugiyama's layered drawing, simplified), and returns the number of layers:
//
//  1. Edges into entry services are ignored for layering (it is still
//     drawn), so every entry service is in the first column; other cycles
//     are broken by a depth-first search from the entry services, then
//     from the other nodes, in id order: an edge back to a node on the
//     search's stack is ignored too.
//  2. A node's layer is the longest path to it from a node without
//     callers, so every call points right.
//  3. Dependencies nothing is called from (databases, caches, external
//     hosts) go to one last column: entry services left, leaves right.
//  4. Within a layer nodes are ordered by the mean row of their callers
//     (barycentre, fewer crossings), ties by id, so the same graph is
//     drawn the same way every time.
func LayoutMap(nodes []MapNode, edges []MapEdge) int {
	if len(nodes) == 0 {
		return 0
	}
	slices.SortFunc(nodes, func(a, b MapNode) int { return cmp.Compare(a.ID, b.ID) })
	idx := make(map[string]int, len(nodes))
	for i := range nodes {
		idx[nodes[i].ID] = i
	}
	out := make([][]int, len(nodes))
	for _, e := range edges {
		f, okf := idx[e.From]
		t, okt := idx[e.To]
		if okf && okt && f != t && !slices.Contains(out[f], t) {
			out[f] = append(out[f], t)
		}
	}
	for i := range out {
		slices.SortFunc(out[i], func(a, b int) int { return cmp.Compare(nodes[a].ID, nodes[b].ID) })
	}
	// 1. Depth-first search (iterative), marking back edges.
	const white, grey, black = 0, 1, 2
	colour := make([]int8, len(nodes))
	back := map[[2]int]bool{}
	starts := make([]int, 0, len(nodes))
	for i := range nodes {
		if nodes[i].Entry {
			starts = append(starts, i)
		}
	}
	for i := range nodes {
		if !nodes[i].Entry {
			starts = append(starts, i)
		}
	}
	type frame struct{ n, next int }
	for _, s := range starts {
		if colour[s] != white {
			continue
		}
		stack := []frame{{s, 0}}
		colour[s] = grey
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.next == len(out[f.n]) {
				colour[f.n] = black
				stack = stack[:len(stack)-1]
				continue
			}
			t := out[f.n][f.next]
			f.next++
			if nodes[t].Entry {
				back[[2]int{f.n, t}] = true
				continue
			}
			switch colour[t] {
			case grey:
				back[[2]int{f.n, t}] = true
			case white:
				colour[t] = grey
				stack = append(stack, frame{t, 0})
			}
		}
	}
	// 2. Longest path layering over the acyclic edges (Kahn's order).
	indeg := make([]int, len(nodes))
	for f := range out {
		for _, t := range out[f] {
			if !back[[2]int{f, t}] {
				indeg[t]++
			}
		}
	}
	layer := make([]int, len(nodes))
	queue := []int{}
	for i := range nodes {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		for _, t := range out[f] {
			if back[[2]int{f, t}] {
				continue
			}
			layer[t] = max(layer[t], layer[f]+1)
			if indeg[t]--; indeg[t] == 0 {
				queue = append(queue, t)
			}
		}
	}
	// 3. Leaf dependencies to the last column.
	leaf := func(i int) bool { return nodes[i].Kind != NodeService && len(out[i]) == 0 }
	last := 0
	for i := range nodes {
		if !leaf(i) {
			last = max(last, layer[i])
		}
	}
	anyLeaf := false
	for i := range nodes {
		if leaf(i) {
			layer[i] = last + 1
			anyLeaf = true
		}
	}
	n := last + 1
	if anyLeaf {
		n++
	}
	// 4. Rows by barycentre of the callers in earlier layers.
	in := make([][]int, len(nodes))
	for f := range out {
		for _, t := range out[f] {
			in[t] = append(in[t], f)
		}
	}
	row := make([]int, len(nodes))
	byLayer := make([][]int, n)
	for i := range nodes {
		byLayer[layer[i]] = append(byLayer[layer[i]], i)
	}
	for l := range byLayer {
		key := make(map[int]float64, len(byLayer[l]))
		for _, i := range byLayer[l] {
			sum, k := 0.0, 0
			for _, p := range in[i] {
				if layer[p] < l {
					sum += float64(row[p])
					k++
				}
			}
			key[i] = math.Inf(1)
			if k > 0 {
				key[i] = sum / float64(k)
			}
		}
		slices.SortFunc(byLayer[l], func(a, b int) int {
			if l == 0 && nodes[a].Entry != nodes[b].Entry {
				if nodes[a].Entry {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(key[a], key[b]), cmp.Compare(nodes[a].ID, nodes[b].ID))
		})
		for r, i := range byLayer[l] {
			row[i] = r
		}
	}
	for i := range nodes {
		nodes[i].Layer, nodes[i].Row = layer[i], row[i]
	}
	return n
}

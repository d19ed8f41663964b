//! The workflow graph: node index, adjacency, and linear-time checks (Kahn's algorithm).

use std::collections::{HashMap, VecDeque};

use crate::document::EdgeDoc;

/// Adjacency of a workflow whose edges all name existing nodes.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Node id -> index in `nodes`.
    pub index: HashMap<String, usize>,
    /// Per node: indices of edges leaving it, in document order.
    pub out_edges: Vec<Vec<usize>>,
    /// Per node: indices of edges entering it.
    pub in_edges: Vec<Vec<usize>>,
    /// Per edge: (from, to) node indices.
    pub ends: Vec<(usize, usize)>,
}

impl Graph {
    /// Builds the adjacency; edges naming unknown nodes are left out (validation reports them).
    pub fn build(ids: &[&str], edges: &[EdgeDoc]) -> Graph {
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            index.entry((*id).to_string()).or_insert(i);
        }
        let mut out_edges = vec![Vec::new(); ids.len()];
        let mut in_edges = vec![Vec::new(); ids.len()];
        let mut ends = Vec::with_capacity(edges.len());
        for (e, edge) in edges.iter().enumerate() {
            match (index.get(&edge.from), index.get(&edge.to)) {
                (Some(&f), Some(&t)) => {
                    out_edges[f].push(e);
                    in_edges[t].push(e);
                    ends.push((f, t));
                }
                _ => ends.push((usize::MAX, usize::MAX)),
            }
        }
        Graph {
            index,
            out_edges,
            in_edges,
            ends,
        }
    }

    /// Nodes in topological order, or the nodes left on cycles (or downstream of one).
    pub fn topo_order(&self) -> Result<Vec<usize>, Vec<usize>> {
        let n = self.out_edges.len();
        let mut indegree: Vec<usize> = self.in_edges.iter().map(Vec::len).collect();
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(node) = queue.pop_front() {
            order.push(node);
            for &e in &self.out_edges[node] {
                let to = self.ends[e].1;
                indegree[to] -= 1;
                if indegree[to] == 0 {
                    queue.push_back(to);
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err((0..n).filter(|&i| indegree[i] > 0).collect())
        }
    }

    /// Whether `ancestor` reaches `node` along edges (breadth-first over in-edges; linear).
    pub fn upstream_of(&self, node: usize) -> Vec<bool> {
        let mut seen = vec![false; self.in_edges.len()];
        let mut queue = VecDeque::from([node]);
        while let Some(n) = queue.pop_front() {
            for &e in &self.in_edges[n] {
                let from = self.ends[e].0;
                if !seen[from] {
                    seen[from] = true;
                    queue.push_back(from);
                }
            }
        }
        seen
    }
}

/// Copy-on-write B-tree mutation of one tree of the metadata (FORMAT.md §3.7); reading is
/// `BTreeReader`'s (over the transaction manager, through `MetadataView`).
///
/// Every change shadows the path from the root down (`TransactionManager.shadow`), so the
/// committed tree stays intact; the new root is returned and stored by the caller.
/// Leaf values are opaque bytes; `policy` only says what a copied shared leaf references.
/// Keeping references right for inserted/overwritten/removed values is the caller's job
/// (insert/remove hand back the old value).
struct BTree {
    let tm: TransactionManager
    let leafValueSize: Int
    let policy: ValuePolicy

    init(tm: TransactionManager, leafValueSize: Int, policy: ValuePolicy) {
        self.tm = tm
        self.leafValueSize = leafValueSize
        self.policy = policy
    }

    /// Non-root nodes keep at least a third of their capacity (0.9.0 thin_check: "too few entries").
    static func minEntries(_ n: Node) -> Int { n.maxEntries / 3 }

    // MARK: new tree

    /// A new empty tree (one empty leaf); returns its root.
    func create() throws -> UInt64 {
        try tm.newNode(leaf: true, valueSize: leafValueSize).location
    }
}

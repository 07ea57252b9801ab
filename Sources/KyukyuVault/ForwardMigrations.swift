public import GRDB

extension DatabaseMigrator {
    /// Applies the migrations this release has and the database has not, after refusing a database that a newer
    /// release has migrated (it holds migrations this release does not know).
    ///
    /// Migrations only move forward: a shipped migration is never edited or removed, and a release never opens a
    /// database from the future, whose rows an older schema's rules would corrupt. GRDB itself ignores unknown
    /// migrations; this check does not.
    ///
    /// - Parameters:
    ///   - writer: The database.
    ///   - name: What the database is, for the error (`the vault`, `the receiver's database`).
    /// - Throws: ``VaultError/Code/newerDatabase`` naming the unknown migrations, or GRDB's error.
    public func migrateForwardOnly(_ writer: some DatabaseWriter, name: String) throws {
        let known = Set(migrations)
        let applied = try writer.read { db in try self.appliedIdentifiers(db) }
        let unknown = applied.subtracting(known)
        guard unknown.isEmpty else {
            throw VaultError.newerDatabase(
                reason: "\(name) was migrated by a newer release (migrations \(unknown.sorted()) are unknown to this "
                    + "one): downgrades are not supported; run the newer release, or restore a backup made by this one"
            )
        }
        try migrate(writer)
    }
}

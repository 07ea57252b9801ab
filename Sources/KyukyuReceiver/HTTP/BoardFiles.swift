import Foundation
public import Hummingbird

/// The ER board's page: the files of the `Board` folder, read once and served from memory, `/board/` for
/// `index.html` and `/board/<name>` for the rest. No build chain, nothing from a CDN; the page talks only to
/// `/api/v1` (docs/receiver-api.yaml).
public struct BoardFiles: Sendable {
    let files: [String: (type: String, bytes: [UInt8])]

    /// Reads every file under `directory` (default: the module's bundled `Board` folder).
    ///
    /// - Throws: `CocoaError(.fileNoSuchFile)` when the folder is missing, or the error reading a file.
    public init(directory: String? = nil) throws {
        let root = directory ?? Self.bundledDirectory
        var files: [String: (type: String, bytes: [UInt8])] = [:]
        let manager = FileManager.default
        guard let enumerator = manager.enumerator(atPath: root) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: root])
        }
        while let relative = enumerator.nextObject() as? String {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                let type = Self.contentType(relative)
            else { continue }
            files[relative] = (type, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        self.files = files
    }

    /// The `Board` folder shipped with the module.
    public static var bundledDirectory: String {
        Bundle.module.resourceURL!.appendingPathComponent("Board").path
    }

    /// The bundled page, read on first use (empty if the bundle lacks it: every file is then a 404).
    static let bundled: BoardFiles = (try? BoardFiles()) ?? BoardFiles(files: [:])

    init(files: [String: (type: String, bytes: [UInt8])]) { self.files = files }

    /// The names of the files served (relative to `/board/`).
    public var names: [String] { files.keys.sorted() }

    static func contentType(_ name: String) -> String? {
        switch (name as NSString).pathExtension.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "json": "application/json; charset=utf-8"
        default: nil
        }
    }

    func response(_ name: String) -> Response? {
        guard let file = files[name] else { return nil }
        return Response(
            status: .ok,
            // The security headers (Content-Security-Policy `default-src 'self'`, nosniff, no referrer, no framing)
            // are the ErrorMiddleware's, on every response of the receiver.
            headers: [.contentType: file.type, .cacheControl: "no-cache"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: file.bytes))
        )
    }

    /// Adds `GET /board/` (and `/board`) and `GET /board/{file}`.
    func register<Context: RequestContext>(on router: some RouterMethods<Context>) {
        router.get("/board") { _, _ in
            guard let response = response("index.html") else { throw ReceiverHTTPError.notFound("no such file") }
            return response
        }
        router.get("/board/**") { request, _ in
            let name = String(request.uri.path.dropFirst("/board/".count))
            guard !name.contains(".."), let response = response(name.isEmpty ? "index.html" : name) else {
                throw ReceiverHTTPError.notFound("no such file")
            }
            return response
        }
    }
}

import Foundation
import Hummingbird

/// The tablet's app: the files of the `UI` folder, read once at start and served from memory, `/` for
/// `index.html` and `/ui/<name>` for the rest. No build chain, nothing from a CDN.
public struct UIFiles: Sendable {
    let files: [String: (type: String, bytes: [UInt8])]

    /// Reads every file under `directory` (default: the module's bundled `UI` folder).
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

    /// The `UI` folder shipped with the module.
    public static var bundledDirectory: String {
        Bundle.module.resourceURL!.appendingPathComponent("UI").path
    }

    static func contentType(_ name: String) -> String? {
        switch (name as NSString).pathExtension.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "json": "application/json; charset=utf-8"
        case "ico": "image/x-icon"
        case "woff2": "font/woff2"
        default: nil
        }
    }

    func response(_ name: String) -> Response? {
        guard let file = files[name] else { return nil }
        return Response(
            status: .ok,
            headers: [.contentType: file.type, .cacheControl: "no-cache"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: file.bytes))
        )
    }

    func register<Context: RequestContext>(on router: some RouterMethods<Context>) {
        router.get("/") { _, _ in
            guard let response = response("index.html") else { throw Problem.notFound("the tablet app is missing") }
            return response
        }
        router.get("/ui/**") { request, _ in
            let name = String(request.uri.path.dropFirst("/ui/".count))
            guard !name.contains(".."), let response = response(name) else {
                throw Problem.notFound("no such file")
            }
            return response
        }
    }
}

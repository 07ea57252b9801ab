import Crypto
import Foundation
import KyukyuCardSim
import KyukyuDomain
import KyukyuOnshi
import Logging
import Synchronization

/// Tunables of the stub's protocol logic.
public struct EligibilityServiceConfiguration: Sendable, Hashable {
    /// How long a nonce may be used (default 120 s).
    public var nonceLifetime: TimeInterval
    /// How long a session token works (default 15 min).
    public var sessionLifetime: TimeInterval
    /// How long consent flags are available (default 24 h).
    public var consentLifetime: TimeInterval
    /// Lookups search holders 1...populationSize (default 200).
    public var populationSize: Int

    /// Makes a configuration.
    public init(
        nonceLifetime: TimeInterval = 120,
        sessionLifetime: TimeInterval = 900,
        consentLifetime: TimeInterval = 86400,
        populationSize: Int = 200
    ) {
        self.nonceLifetime = nonceLifetime
        self.sessionLifetime = sessionLifetime
        self.consentLifetime = consentLifetime
        self.populationSize = populationSize
    }
}

/// The stub's protocol logic, without HTTP: nonces, sessions, lookups, categories, the viewing log.
///
/// Every call takes the device ID of the terminal (from its TLS client certificate) for the viewing log.
/// Nothing here logs patient data: log lines carry crew IDs, device IDs and result codes only.
public final class EligibilityService: Sendable {
    private struct Nonce: Sendable {
        var bytes: [UInt8]
        var expiresAt: Date
    }

    private struct Session: Sendable {
        var patient: Int
        var consent: ConsentFlags
        var expiresAt: Date
        var viewing: Int
        var institutionCode: String
        var referenceClassification: String
    }

    private struct State: Sendable {
        var nonces: [String: Nonce] = [:]
        var sessions: [String: Session] = [:]
        var revocations: RevocationList
        var cache: [String: CategoryRecords] = [:]
    }

    /// The viewing log.
    public let viewings: ViewingLog
    /// The configuration.
    public let configuration: EligibilityServiceConfiguration
    private let validator: PatientCertificateValidator
    private let state: Mutex<State>
    private let clock: @Sendable () -> Date
    private let logger: Logger

    /// Makes a service.
    ///
    /// - Parameters:
    ///   - validator: Checks card certificates against the card simulator's CA.
    ///   - revocations: The initial revocation list.
    ///   - configuration: Lifetimes and population size.
    ///   - viewings: The viewing log.
    ///   - logger: Receives crew IDs, device IDs and result codes (never patient data).
    ///   - clock: The time source (tests move it).
    public init(
        validator: PatientCertificateValidator,
        revocations: RevocationList = RevocationList(),
        configuration: EligibilityServiceConfiguration = .init(),
        viewings: ViewingLog = ViewingLog(),
        logger: Logger,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.validator = validator
        self.state = Mutex(State(revocations: revocations))
        self.configuration = configuration
        self.viewings = viewings
        self.logger = logger
        self.clock = clock
    }

    /// The revocation list in force.
    public var revocations: RevocationList {
        self.state.withLock { $0.revocations }
    }

    /// Replaces the revocation list.
    public func setRevocations(_ list: RevocationList) {
        self.state.withLock { $0.revocations = list }
    }

    /// Forgets nonces, sessions, the record cache and the viewing log.
    public func reset() async {
        self.state.withLock {
            $0.nonces = [:]
            $0.sessions = [:]
            $0.cache = [:]
        }
        await self.viewings.reset()
    }

    private func header(
        echoing request: MessageHeader?,
        result: ProcessingResult,
        institution: String? = nil,
        reference: String? = nil
    ) -> MessageHeader {
        MessageHeader(
            processedAt: self.clock(),
            medicalInstitutionCode: request?.medicalInstitutionCode ?? institution ?? "0000000000",
            referenceClassification: request?.referenceClassification ?? reference ?? MessageHeader.emergencyReference,
            resultSegment: result.status == .completed ? .success : .error,
            errorCode: result.status == .completed ? nil : result.code,
            messageID: request?.messageID
        )
    }

    /// A failure response header, for the HTTP layer's fault and error bodies.
    public func failureHeader(_ result: ProcessingResult) -> MessageHeader {
        self.header(echoing: nil, result: result)
    }

    // MARK: Nonces

    /// Issues a single-use nonce (32 random bytes).
    public func nonce(_ request: NonceRequest, deviceID: String) -> NonceResponse {
        let now = self.clock()
        let id = randomHex(16)
        let bytes = randomBytes(32)
        let expiresAt = now.addingTimeInterval(self.configuration.nonceLifetime)
        self.state.withLock { state in
            state.nonces = state.nonces.filter { $0.value.expiresAt > now }
            state.nonces[id] = Nonce(bytes: bytes, expiresAt: expiresAt)
        }
        self.logger.debug(
            "nonce issued",
            metadata: ["kyukyu.elig.crew": "\(request.crewID)", "kyukyu.elig.device": "\(deviceID)"]
        )
        return NonceResponse(
            header: self.header(echoing: request.header, result: .completed),
            result: .completed,
            nonceID: id,
            nonce: bytes,
            expiresAt: expiresAt
        )
    }

    private func consumeNonce(_ id: String?, now: Date) -> [UInt8]? {
        guard let id else { return nil }
        return self.state.withLock { state in
            guard let nonce = state.nonces.removeValue(forKey: id), nonce.expiresAt > now else { return nil }
            return nonce.bytes
        }
    }

    // MARK: Sessions

    /// Opens a session from the card's user-authentication certificate (visual or PIN assurance).
    public func authenticate(_ request: AuthenticationRequest, deviceID: String) async -> SessionResponse {
        let now = self.clock()
        var patient: Int?
        let result: ProcessingResult
        switch self.validator.check(request.certificateDER, now: now, revocations: self.revocations) {
        case .rejected(let code, let message):
            result = .failed(code, message)
        case .valid(let holder):
            patient = holder
            if request.assurance == .pin {
                if let nonce = self.consumeNonce(request.nonceID, now: now) {
                    if let signature = request.signature,
                        PatientCertificateValidator.verifyNonceSignature(
                            certificateDER: request.certificateDER,
                            nonce: nonce,
                            signature: signature
                        )
                    {
                        result = self.consentResult(request.consent)
                    } else {
                        result = .failed(
                            OnshiResultCode.signatureInvalid,
                            "the signature over the nonce does not verify"
                        )
                    }
                } else {
                    result = .failed(OnshiResultCode.nonceInvalid, "the nonce is missing, unknown, used or expired")
                }
            } else {
                result = self.consentResult(request.consent)
            }
        }
        return await self.openSession(
            result: result,
            patient: patient,
            requestHeader: request.header,
            crewID: request.crewID,
            deviceID: deviceID,
            method: "card",
            assurance: request.assurance,
            consent: request.consent,
            now: now
        )
    }

    /// Opens a session from the four fields or the insurance card (the crew vouches for identity).
    public func lookup(_ request: LookupRequest, deviceID: String) async -> SessionResponse {
        let now = self.clock()
        let today = OnshiDate(japanDayOf: now)
        let matches = self.matchingPatients(request.query, today: today)
        var patient: Int?
        let result: ProcessingResult
        switch matches.count {
        case 0: result = .failed(OnshiResultCode.patientNotFound, "no patient matches")
        case 1:
            patient = matches[0]
            result = self.consentResult(request.consent)
        default: result = .failed(OnshiResultCode.patientAmbiguous, "several patients match")
        }
        return await self.openSession(
            result: result,
            patient: patient,
            requestHeader: request.header,
            crewID: request.crewID,
            deviceID: deviceID,
            method: "lookup",
            assurance: nil,
            consent: request.consent,
            now: now
        )
    }

    private func consentResult(_ consent: ConsentBasis) -> ProcessingResult {
        consent == .refused
            ? .failed(OnshiResultCode.consentRefused, "consent refused: nothing is returned") : .completed
    }

    private func openSession(
        result: ProcessingResult,
        patient: Int?,
        requestHeader: MessageHeader,
        crewID: String,
        deviceID: String,
        method: String,
        assurance: AssuranceLevel?,
        consent: ConsentBasis,
        now: Date
    ) async -> SessionResponse {
        let viewing = await self.viewings.record(
            at: now,
            crewID: crewID,
            deviceID: deviceID,
            method: method,
            assurance: assurance,
            consent: consent,
            patientNumber: patient,
            resultCode: result.code
        )
        self.logger.info(
            "session request",
            metadata: [
                "kyukyu.elig.crew": "\(crewID)", "kyukyu.elig.device": "\(deviceID)",
                "kyukyu.elig.method": "\(method)", "kyukyu.elig.result": "\(result.code)",
            ]
        )
        guard result.status == .completed, let patient else {
            return SessionResponse(header: self.header(echoing: requestHeader, result: result), result: result)
        }
        let flags = ConsentFlags(
            basis: consent,
            medication: true,
            diagnosis: true,
            surgery: true,
            checkup: true,
            allergy: true,
            availableUntil: now.addingTimeInterval(self.configuration.consentLifetime)
        )
        let token = randomHex(32)
        let expiresAt = now.addingTimeInterval(self.configuration.sessionLifetime)
        self.state.withLock { state in
            state.sessions = state.sessions.filter { $0.value.expiresAt > now }
            state.sessions[token] = Session(
                patient: patient,
                consent: flags,
                expiresAt: expiresAt,
                viewing: viewing,
                institutionCode: requestHeader.medicalInstitutionCode,
                referenceClassification: requestHeader.referenceClassification
            )
        }
        return SessionResponse(
            header: self.header(echoing: requestHeader, result: result),
            result: result,
            sessionToken: token,
            sessionExpiresAt: expiresAt,
            qualificationValidity: SyntheticPatient(number: patient, today: OnshiDate(japanDayOf: now))
                .qualificationValidity,
            consent: flags
        )
    }

    /// The patients matching a lookup query among holders 1...populationSize.
    public func matchingPatients(_ query: PatientQuery, today: OnshiDate) -> [Int] {
        var out: [Int] = []
        for n in 1...max(1, self.configuration.populationSize) {
            let holder = SyntheticHolder(number: n)
            switch query {
            case .demographics(let name, let birthDate, let sex, let address):
                let wanted = normalize(name)
                guard wanted == normalize(holder.fullName) || wanted == normalize(holder.fullNameKana),
                    birthDate.year == holder.birthDate.year, birthDate.month == holder.birthDate.month,
                    birthDate.day == holder.birthDate.day, sex.rawValue == holder.sex.rawValue,
                    normalizeAddress(address) == normalizeAddress(holder.address)
                else { continue }
                out.append(n)
            case .insurance(let insurerNumber, let symbol, let number):
                let patient = SyntheticPatient(number: n, today: today)
                let insurer = patient.insurer
                guard insurer.insurerNumber == insurerNumber, insurer.symbol == symbol, insurer.number == number
                else { continue }
                out.append(n)
            }
        }
        return out
    }

    // MARK: Categories

    /// The records of `category` for the session `token`.
    public func category(token: String, category: MedicalCategory, deviceID: String) async -> CategoryResponse {
        let now = self.clock()
        let session = self.state.withLock { state -> Session? in
            guard let session = state.sessions[token], session.expiresAt > now else { return nil }
            return session
        }
        guard let session else {
            let result = ProcessingResult.failed(
                OnshiResultCode.sessionInvalid,
                "the session is unknown or has expired"
            )
            return CategoryResponse(
                header: self.header(echoing: nil, result: result),
                result: result,
                category: category,
                records: .empty(category)
            )
        }
        let result: ProcessingResult
        let records: CategoryRecords
        if !session.consent.covers(category) || session.consent.availableUntil <= now {
            result = .failed(OnshiResultCode.consentNotCovering, "the consent does not cover this category")
            records = .empty(category)
        } else {
            records = self.records(patient: session.patient, category: category, today: OnshiDate(japanDayOf: now))
            result =
                records.count == 0
                ? ProcessingResult(status: .completed, code: OnshiResultCode.noRecords) : .completed
        }
        await self.viewings.recordFetch(
            viewing: session.viewing,
            category: category,
            at: now,
            resultCode: result.code,
            records: records.count
        )
        return CategoryResponse(
            header: self.header(
                echoing: nil,
                result: result,
                institution: session.institutionCode,
                reference: session.referenceClassification
            ),
            result: result,
            category: category,
            records: records
        )
    }

    /// Patient `patient`'s records of `category` as of `today` (cached).
    public func records(patient: Int, category: MedicalCategory, today: OnshiDate) -> CategoryRecords {
        let key = "\(patient)|\(category.rawValue)|\(today.xmlText)"
        if let cached = self.state.withLock({ $0.cache[key] }) { return cached }
        let records = SyntheticPatient(number: patient, today: today).records(category)
        self.state.withLock { state in
            if state.cache.count > 512 { state.cache = [:] }
            state.cache[key] = records
        }
        return records
    }
}

private func normalize(_ s: String) -> String {
    String(s.unicodeScalars.filter { $0 != " " && $0 != "\u{3000}" && $0 != "\t" }.map(Character.init))
}

private func normalizeAddress(_ s: String) -> String {
    normalize(s.replacingOccurrences(of: "（" + SyntheticHolder.syntheticMarker + "）", with: ""))
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

func randomHex(_ count: Int) -> String {
    randomBytes(count).map { String(format: "%02x", $0) }.joined()
}

// Element's "secure backup", as matrix-js-sdk (the library inside Element
// Web) does it: device A sets up cross-signing, secret storage and a key
// backup, sends encrypted messages and backs their keys up; device B, a new
// login of the same user, cannot read them until it takes the backup key
// out of secret storage with the recovery key and restores the backup.
//
// Usage: node key_backup.mjs BASE_URL USER PASSWORD
// Prints one JSON report on stdout; exits non-zero with the reason on error.
import * as sdk from "matrix-js-sdk";
import { decodeRecoveryKey, CryptoEvent } from "matrix-js-sdk/lib/crypto-api/index.js";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel("warn");

const [baseUrl, user, password] = process.argv.slice(2);
const MESSAGES = ["the spare key is under the flowerpot", "and the wifi password is hunter2"];
const passwordAuth = { type: "m.login.password", identifier: { type: "m.id.user", user }, password };

function until(what, check, ms = 60000) {
    const deadline = Date.now() + ms;
    return new Promise((resolve, reject) => {
        const tick = async () => {
            try {
                const value = await check();
                if (value) return resolve(value);
            } catch (e) {
                return reject(e);
            }
            if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
            setTimeout(tick, 200);
        };
        tick();
    });
}

/** Logs in as a new device and starts a client with Rust crypto in memory. */
async function device(secretKey) {
    const login = await sdk.createClient({ baseUrl }).loginRequest(passwordAuth);
    const client = sdk.createClient({
        baseUrl,
        userId: login.user_id,
        deviceId: login.device_id,
        accessToken: login.access_token,
        cryptoCallbacks: {
            getSecretStorageKey: async ({ keys }) => {
                const id = Object.keys(keys)[0];
                return secretKey.current ? [id, secretKey.current] : null;
            },
        },
    });
    await client.initRustCrypto({ useIndexedDB: false });
    await client.startClient({ initialSyncLimit: 20 });
    await until("first sync", () => client.isInitialSyncComplete());
    return client;
}

async function serverBackup(client) {
    return client.http.authedRequest("GET", "/room_keys/version", undefined, undefined, {
        prefix: "/_matrix/client/v3",
    });
}

const report = {};
const secretKey = { current: null };

// Device A: what Element does on "Set up secure backup".
const a = await device(secretKey);
const cryptoA = a.getCrypto();
let recoveryKey;
await cryptoA.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest(passwordAuth);
    },
});
await cryptoA.bootstrapSecretStorage({
    createSecretStorageKey: async () => {
        const key = await cryptoA.createRecoveryKeyFromPassphrase();
        secretKey.current = key.privateKey;
        recoveryKey = key.encodedPrivateKey;
        return key;
    },
    setupNewSecretStorage: true,
    setupNewKeyBackup: true,
});
report.cross_signing_ready = await cryptoA.isCrossSigningReady();
report.secret_storage_ready = await cryptoA.isSecretStorageReady();

const { room_id: roomId } = await a.createRoom({
    name: "family secrets",
    initial_state: [
        { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
    ],
});
await until("room on device A", () => a.getRoom(roomId)?.hasEncryptionStateEvent());
const sent = [];
for (const body of MESSAGES) {
    const { event_id } = await a.sendMessage(roomId, { msgtype: "m.text", body });
    sent.push(event_id);
}
// The backup loop uploads the new Megolm session by itself.
const remaining = new Promise((resolve) =>
    a.on(CryptoEvent.KeyBackupSessionsRemaining, (n) => n === 0 && resolve()),
);
const backedUp = await until("keys in the server's backup", async () => {
    const info = await serverBackup(a);
    return info.count > 0 && info;
});
await Promise.race([remaining, new Promise((r) => setTimeout(r, 5000))]);
report.backup_version = backedUp.version;
report.backup_algorithm = backedUp.algorithm;
report.backup_count = (await serverBackup(a)).count;
report.trusted_on_a = (await cryptoA.isKeyBackupTrusted(backedUp)).trusted;
a.stopClient();

// Device B: a new login, without the keys.
secretKey.current = null;
const b = await device(secretKey);
const cryptoB = b.getCrypto();
const room = await until("room on device B", async () => {
    const r = b.getRoom(roomId);
    return r && r.getLiveTimeline().getEvents().filter((e) => e.getId() === sent[1]).length && r;
});
const events = () =>
    sent.map((id) => room.getLiveTimeline().getEvents().find((e) => e.getId() === id));
for (const ev of events()) await b.decryptEventIfNeeded(ev);
report.before_restore = events().map((e) => (e.isDecryptionFailure() ? "unable to decrypt" : e.getContent().body));

// The user types the recovery key: it opens secret storage, which holds the backup key.
secretKey.current = decodeRecoveryKey(recoveryKey);
await cryptoB.loadSessionBackupPrivateKeyFromSecretStorage();
const check = await cryptoB.checkKeyBackupAndEnable();
report.backup_found_on_b = check?.backupInfo?.version ?? null;
const restored = await cryptoB.restoreKeyBackup();
report.restored = { total: restored.total, imported: restored.imported };
await until("messages decrypted on device B", async () => {
    for (const ev of events()) await b.decryptEventIfNeeded(ev);
    return events().every((e) => !e.isDecryptionFailure() && e.getContent().body);
});
report.after_restore = events().map((e) => e.getContent().body);
b.stopClient();

console.log(JSON.stringify(report));
process.exit(0);

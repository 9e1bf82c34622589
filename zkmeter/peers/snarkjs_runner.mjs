// Times one snarkjs proof in-process, so node start-up and curve set-up are not counted.
//
// usage: node snarkjs_runner.mjs <groth16|plonk> <circuit.wasm> <circuit_final.zkey>
//                                <verification_key.json> <input.json> <out_dir>
// Writes out_dir/{witness.wtns, proof.json, public.json, calldata.txt, timings.json}.
// Exit code 2: witness generation failed (an assertion of the circuit does not hold);
// exit code 0: a proof was produced (timings.json says whether it verified).
import * as snarkjs from "snarkjs";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const [protocol, wasm, zkey, vkeyPath, inputPath, outDir] = process.argv.slice(2);
const scheme = { groth16: snarkjs.groth16, plonk: snarkjs.plonk }[protocol];
if (!scheme) {
    console.error(`unknown protocol ${protocol}`);
    process.exit(64);
}
const input = JSON.parse(readFileSync(inputPath, "utf8"));
const vkey = JSON.parse(readFileSync(vkeyPath, "utf8"));
const wtns = join(outDir, "witness.wtns");

// Build the (cached, multi-threaded) BN254 curve before any clock starts.
const curve = await snarkjs.curves.getCurveFromName("bn128");

const t0 = performance.now();
try {
    await snarkjs.wtns.calculate(input, wasm, wtns);
} catch (err) {
    console.error(`witness generation failed: ${err.message}`);
    await curve.terminate();
    process.exit(2);
}
const t1 = performance.now();
const { proof, publicSignals } = await scheme.prove(zkey, wtns);
const t2 = performance.now();
const ok = await scheme.verify(vkey, publicSignals, proof);
const t3 = performance.now();
const calldata = await scheme.exportSolidityCallData(proof, publicSignals);

writeFileSync(join(outDir, "proof.json"), JSON.stringify(proof, null, 1));
writeFileSync(join(outDir, "public.json"), JSON.stringify(publicSignals, null, 1));
writeFileSync(join(outDir, "calldata.txt"), calldata);
writeFileSync(
    join(outDir, "timings.json"),
    JSON.stringify({
        witness_seconds: (t1 - t0) / 1000,
        prove_seconds: (t2 - t1) / 1000,
        verify_seconds: (t3 - t2) / 1000,
        ok,
    }),
);
await curve.terminate();
process.exit(0);

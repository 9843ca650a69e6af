// The node-opcua server the OPC-UA benchmark collects from (npm node-opcua in
// $TAOS_TEST_NODE_MODULES, installed by taosadapter/tests/setup_peers.sh). Same address space
// as taosx/tests/support/opcua_server.py: folder Plant with v0..v{N-1} (Int32 when i % 10 == 9,
// Double otherwise), every variable updated each period with a source timestamp. Prints READY
// when listening and "RATE <n> values/s" every 5 s on stderr.
//
// usage: node server.js <port> <count> [--period ms] [--pki dir]
"use strict";
const path = require("path");
const os = require("os");
const opcua = require("node-opcua");

const args = process.argv.slice(2);
const port = parseInt(args[0], 10);
const count = parseInt(args[1], 10);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const period = parseInt(opt("--period", "1000"), 10);
const pki = opt("--pki", path.join(os.tmpdir(), `taos-opcua-bench-${port}`));

async function main() {
  const certs = (sub) =>
    new opcua.OPCUACertificateManager({
      rootFolder: path.join(pki, sub),
      automaticallyAcceptUnknownCertificate: true,
    });
  const limit = Math.max(100000, count * 2);
  const server = new opcua.OPCUAServer({
    port,
    host: "127.0.0.1",
    resourcePath: "/taos/test",
    securityModes: [opcua.MessageSecurityMode.None],
    securityPolicies: [opcua.SecurityPolicy.None],
    allowAnonymous: true,
    serverCertificateManager: certs("server"),
    userCertificateManager: certs("user"),
    serverCapabilities: {
      maxMonitoredItems: limit,
      maxMonitoredItemsPerSubscription: limit,
      maxMonitoredItemsQueueSize: 100,
      operationLimits: {
        maxNodesPerRead: limit,
        maxNodesPerBrowse: limit,
        maxMonitoredItemsPerCall: limit,
      },
    },
  });
  await server.initialize();
  const space = server.engine.addressSpace;
  const ns = space.getOwnNamespace();
  const plant = ns.addFolder(space.rootFolder.objects, { browseName: "Plant", nodeId: "s=Plant" });
  const vars = [];
  for (let i = 0; i < count; i++) {
    const int = i % 10 === 9;
    const dataType = int ? opcua.DataType.Int32 : opcua.DataType.Double;
    const v = ns.addVariable({
      organizedBy: plant,
      browseName: `v${i}`,
      nodeId: `s=v${i}`,
      displayName: `Sensor ${i}`,
      description: `variable ${i} of the plant`,
      dataType: int ? "Int32" : "Double",
      minimumSamplingInterval: 0,
    });
    v.setValueFromSource(new opcua.Variant({ dataType, value: int ? i * 1000 : i }));
    vars.push([i, int, v]);
  }
  await server.start();
  process.stderr.write("READY\n");

  let tick = 0;
  let sinceReport = 0;
  let reportAt = Date.now();
  let next = Date.now();
  const step = () => {
    tick += 1;
    const now = new Date();
    for (const [i, int, v] of vars) {
      const value = int ? i * 1000 + tick : i + tick / 1000;
      v.setValueFromSource(
        new opcua.Variant({ dataType: int ? opcua.DataType.Int32 : opcua.DataType.Double, value }),
        opcua.StatusCodes.Good,
        now,
      );
    }
    sinceReport += vars.length;
    const t = Date.now();
    if (t - reportAt >= 5000) {
      const rate = (sinceReport * 1000) / (t - reportAt);
      process.stderr.write(`RATE ${rate.toFixed(0)} values/s written by the server\n`);
      reportAt = t;
      sinceReport = 0;
    }
    // Period from tick start to tick start.
    next += period;
    setTimeout(step, Math.max(0, next - Date.now()));
  };
  next = Date.now() + period;
  setTimeout(step, period);
  const stop = async () => {
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  process.stderr.write(`server failed: ${e.stack || e}\n`);
  process.exit(1);
});

// The VS Code client: starts `converge lsp` (stdio) for .cvg files. Everything else —
// diagnostics, completion, hover, definition, references, outline, formatting — is the
// server's (converge_rules/lsp/); this file only says how to start it.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const configured = vscode.workspace.getConfiguration("converge").get("server.command");
  const [command, ...args] = configured && configured.length ? configured : ["converge", "lsp"];
  const serverOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "converge" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.cvg") },
  };
  client = new LanguageClient("converge", "Converge language server", serverOptions,
    clientOptions);
  client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `Could not start \`${command} ${args.join(" ")}\`: ${error.message}. ` +
      'Install it with: pip install "converge-rules[lsp]", or set converge.server.command.');
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };

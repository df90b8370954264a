"""A local SMTP sink on 127.0.0.1 for the e-mail channel's tests: it speaks enough SMTP for
Django's backend (EHLO, MAIL, RCPT, DATA, QUIT) and keeps every message it accepts."""

import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    data: str = ""


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 sink ready")
                message = Received()
                while line := self.rfile.readline().decode(errors="replace"):
                    verb = line[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        message = Received(sender=line.split(":", 1)[1].strip())
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        message.recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        lines = []
                        while (part := self.rfile.readline().decode(errors="replace")) not in (
                            ".\r\n",
                            "",
                        ):
                            lines.append(part)
                        message.data = "".join(lines)
                        sink.messages.append(message)
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

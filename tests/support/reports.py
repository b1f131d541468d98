"""Bounce and complaint reports as real MTAs write them, around a message we sent.

`dsn` follows what Postfix's bounce(8) writes (text/plain + message/delivery-status +
text/rfc822-headers); `arf` follows RFC 5965 Appendix B.2 (text/plain +
message/feedback-report + message/rfc822).
"""

from __future__ import annotations


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def dsn(
    *,
    message_id: str,
    recipient: str,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    report_id: str = "<20261122044512.3F1A21C0123@mx.acme.example>",
) -> bytes:
    return _crlf(f"""\
Return-Path: <>
Received: by mx.acme.example (Postfix) id 3F1A21C0123; Sun, 22 Nov 2026 04:45:12 +0000 (UTC)
Date: Sun, 22 Nov 2026 04:45:12 +0000 (UTC)
From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces@acme.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="3F1A21C0123.1763786712/mx.acme.example"
Message-Id: {report_id}

This is a MIME-encapsulated message.

--3F1A21C0123.1763786712/mx.acme.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.acme.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.com[203.0.113.5] said: 550 5.1.1 User unknown

--3F1A21C0123.1763786712/mx.acme.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.example
X-Postfix-Queue-ID: 3F1A21C0123
X-Postfix-Sender: rfc822; research@acme.example
Arrival-Date: Sun, 22 Nov 2026 04:45:10 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: {diagnostic.format(r=recipient)}

--3F1A21C0123.1763786712/mx.acme.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Acme Research <research@acme.example>
To: {recipient}
Subject: Hello
Date: Sun, 22 Nov 2026 04:45:09 +0000
Message-ID: <{message_id}>
MIME-Version: 1.0

--3F1A21C0123.1763786712/mx.acme.example--
""")


def arf(
    *,
    message_id: str,
    recipient: str,
    report_id: str = "<433689.81121.example@mailbox.example.net>",
) -> bytes:
    return _crlf(f"""\
From: <abusedesk@mailbox.example.net>
Date: Sun, 22 Nov 2026 05:01:00 +0000
Subject: FW: Hello
To: <bounces@acme.example>
Message-ID: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Sun, 22 Nov 2026 04:45:09 +0000.
For more information about this format please see
http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <research@acme.example>
Original-Rcpt-To: <{recipient}>
Arrival-Date: Sun, 22 Nov 2026 04:45:09 +0000
Reporting-MTA: dns; mail.example.net
Source-IP: 192.0.2.1
Authentication-Results: mail.example.net; spf=pass smtp.mail=research@acme.example

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: Acme Research <research@acme.example>
To: {recipient}
Subject: Hello
Date: Sun, 22 Nov 2026 04:45:09 +0000
Message-ID: <{message_id}>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Dear P0, code 1

--part1_13d.2e68ed54_boundary--
""")

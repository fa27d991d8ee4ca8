import Foundation

/// Statutory response deadlines and how far they may be extended.
package enum Deadline {
    /// The initial deadline: GDPR one calendar month from receipt (clamped to the month's end,
    /// Art. 12(3) and Regulation 1182/71), CCPA 45 days (Cal. Civ. Code §1798.130).
    package static func initial(receivedAt: Date, regulation: Regulation) -> Date {
        switch regulation {
        case .gdpr: Timestamp.Calendar.addingMonths(1, to: receivedAt)
        case .ccpa: Timestamp.Calendar.addingDays(45, to: receivedAt)
        }
    }

    /// The latest the deadline may be extended to: GDPR two further months, CCPA 45 further days.
    package static func maximum(initial: Date, regulation: Regulation) -> Date {
        switch regulation {
        case .gdpr: Timestamp.Calendar.addingMonths(2, to: initial)
        case .ccpa: Timestamp.Calendar.addingDays(45, to: initial)
        }
    }

    /// Whole days from `now` to `deadline`, rounded down; once it has passed, minus ``daysOverdue(_:now:)``.
    /// The one count of days that `dsar status` (`OVERDUE (Nd)`), the journal and the notifications
    /// (`days_left: -N`) all show.
    package static func daysLeft(_ deadline: Date, now: Date = DSARClock.now()) -> Int {
        if now > deadline { return -daysOverdue(deadline, now: now) }
        return Int(floor(deadline.timeIntervalSince(now) / 86400))
    }

    /// Whole days since `deadline` passed, rounded down but at least 1 (a deadline missed by an
    /// hour is overdue by a day); 0 when it has not passed.
    package static func daysOverdue(_ deadline: Date, now: Date = DSARClock.now()) -> Int {
        guard now > deadline else { return 0 }
        return max(1, Int(floor(now.timeIntervalSince(deadline) / 86400)))
    }
}

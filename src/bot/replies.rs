//! Every sentence the bot says, in one place: natural Vietnamese, the bot says "em"
//! and addresses the customer as "anh/chị".

use crate::orders::Order;

pub const SORRY_FOR_THE_WAIT: &str =
    "Dạ em thành thật xin lỗi vì anh/chị phải chờ đơn lâu ạ. Em kiểm tra ngay giúp mình nhé.";
pub const ASK_ORDER_CODE: &str =
    "Dạ, anh/chị cho em xin mã đơn hàng (có trong tin nhắn hoặc email xác nhận đặt hàng) để em kiểm tra giúp mình nhé ạ.";
pub const ASK_ORDER_CODE_TOO: &str = "Dạ, em ghi nhận số điện thoại rồi ạ. Anh/chị cho em xin thêm mã đơn hàng (có trong tin nhắn hoặc email xác nhận đặt hàng) để em tra cứu giúp mình nhé.";
pub const ASK_VERIFICATION: &str = "Dạ, để bảo mật thông tin đơn hàng, anh/chị vui lòng cho em xin số điện thoại đặt hàng (hoặc 4 số cuối của số điện thoại) ạ.";
pub const VERIFICATION_MISMATCH: &str = "Dạ, thông tin anh/chị cung cấp chưa khớp với đơn hàng ạ. Anh/chị kiểm tra lại giúp em mã đơn và số điện thoại đặt hàng (hoặc 4 số cuối) nhé.";
pub const VERIFICATION_FAILED: &str = "Dạ, thông tin xác minh vẫn chưa khớp nên em chưa thể cung cấp chi tiết đơn hàng ạ. Em xin chuyển anh/chị sang nhân viên chăm sóc khách hàng để hỗ trợ kỹ hơn nhé.";
pub const CANNOT_GIVE: &str = "Dạ không sao ạ. Em chuyển anh/chị sang nhân viên để tìm đơn theo tên, số điện thoại hoặc địa chỉ nhận hàng giúp mình nhé.";
pub const VERIFICATION_LOCKED: &str = "Dạ, đơn hàng này đã được xác minh chưa đúng nhiều lần nên em tạm ngưng tra cứu tự động để bảo vệ thông tin đơn hàng ạ. Em chuyển anh/chị sang nhân viên chăm sóc khách hàng để hỗ trợ mình nhé.";
pub const ORDER_BACKEND_DOWN: &str = "Dạ, em xin lỗi, hệ thống tra cứu đơn hàng đang tạm thời gián đoạn nên em chưa kiểm tra được ngay ạ. Anh/chị có muốn em chuyển sang nhân viên hỗ trợ không ạ?";
// The hand-off sentences promise no time: the ticket notice that follows them says
// honestly when a person will answer (within working hours, or when they reopen).
pub const HANDOFF_REQUESTED: &str =
    "Dạ vâng, em đã chuyển cuộc trò chuyện sang nhân viên chăm sóc khách hàng ạ.";
pub const HANDOFF_COMPLAINT: &str = "Dạ, em rất xin lỗi vì trải nghiệm không tốt của anh/chị. Em đã chuyển trường hợp này cho nhân viên chăm sóc khách hàng để xử lý ạ.";
pub const HANDOFF_FALLBACK: &str = "Dạ, em xin lỗi vì chưa hỗ trợ được anh/chị. Em đã chuyển cuộc trò chuyện sang nhân viên chăm sóc khách hàng ạ.";
// Honest for a vague message and for a precise one the bot cannot answer ("áo sơ mi
// linen trắng còn size M không"): it does not blame the customer's wording.
pub const FALLBACK: &str = "Dạ, câu này em chưa trả lời được ạ. Anh/chị hỏi lại theo cách khác giúp em, hoặc bấm “Gặp nhân viên” để nhân viên hỗ trợ mình nhé.";
pub const STOCK_FALLBACK: &str = "Dạ, em chưa xem được tồn kho của từng mẫu ạ. Anh/chị bấm “Gặp nhân viên” để nhân viên kiểm tra mẫu, size, màu còn hàng giúp mình nhé.";
pub const PRICE_FALLBACK: &str = "Dạ, em chưa có thông tin về giá hay chi phí cho câu này ạ. Anh/chị bấm “Gặp nhân viên” để nhân viên báo giá giúp mình nhé.";
pub const SOME_UNANSWERED: &str = "Dạ, câu hỏi còn lại em chưa trả lời được ạ. Anh/chị hỏi lại riêng câu đó giúp em, hoặc bấm “Gặp nhân viên” để nhân viên hỗ trợ mình nhé.";
pub const CLARIFY: &str = "Dạ, có phải anh/chị muốn hỏi một trong những câu dưới đây không ạ?";
pub const CLARIFY_AGAIN: &str = "Dạ, anh/chị chọn giúp em một câu bên dưới (bấm vào câu hoặc nhắn số thứ tự của câu), hoặc nhắn câu hỏi khác ạ.";
pub const CLARIFY_NONE: &str = "Dạ vâng, vậy anh/chị nói rõ hơn giúp em câu hỏi của mình nhé, hoặc bấm “Gặp nhân viên” để em chuyển nhân viên hỗ trợ ạ.";
pub const GREETING: &str =
    "Dạ, em chào anh/chị ạ! Em là trợ lý chăm sóc khách hàng, anh/chị cần em hỗ trợ gì ạ?";
pub const THANKS: &str = "Dạ, em cảm ơn anh/chị ạ! Anh/chị cần hỗ trợ thêm gì cứ nhắn em nhé.";
pub const GOODBYE: &str = "Dạ, em chào anh/chị, chúc anh/chị một ngày vui vẻ ạ!";
pub const QUICK_HUMAN: &str = "Gặp nhân viên";
pub const VOICE_GREETING: &str =
    "Dạ, em là trợ lý tự động của cửa hàng, em có thể giúp gì cho anh/chị ạ?";
pub const VOICE_REPROMPT: &str = "Dạ, em chưa nghe rõ, anh/chị nói lại giúp em được không ạ?";
pub const VOICE_SAY_AGAIN: &str = "Dạ, em xin lỗi. Anh/chị nói lại giúp em câu hỏi được không ạ?";
pub const VOICE_KEYS: &str = "Dạ, em vẫn chưa nghe rõ. Anh/chị bấm phím 1 để tra cứu đơn hàng, hoặc bấm phím 0 để gặp nhân viên ạ.";
pub const VOICE_TRANSFER: &str =
    "Dạ, em xin chuyển máy cho nhân viên hỗ trợ, anh/chị vui lòng giữ máy ạ.";
pub const VOICE_TICKET_WAITING: &str = "Dạ, yêu cầu của anh/chị đã được ghi nhận và đang chờ nhân viên xử lý ạ. Ngoài giờ làm việc nên nhân viên sẽ gọi lại cho anh/chị khi cửa hàng mở cửa ạ. Em xin phép kết thúc cuộc gọi ạ.";
pub const VOICE_CHOOSE: &str = "Dạ, anh/chị muốn hỏi câu nào ạ:";
pub const NPS_QUESTION: &str = "Dạ, anh/chị có sẵn lòng giới thiệu cửa hàng cho bạn bè hoặc người thân không ạ? Anh/chị chấm giúp em từ 0 (chắc chắn không) đến 10 (chắc chắn có) nhé.";
pub const NPS_RANGE: &str =
    "Dạ, anh/chị chấm giúp em một điểm từ 0 đến 10 thôi ạ (10 là chắc chắn sẽ giới thiệu).";
pub const NPS_THANKS: &str =
    "Dạ, em cảm ơn anh/chị đã dành thời gian góp ý ạ! Chúc anh/chị một ngày tốt lành.";
pub const HANDOFF_UNHEARD: &str =
    "Dạ, em xin lỗi vì chưa nghe rõ anh/chị nói. Em xin chuyển anh/chị sang nhân viên hỗ trợ ạ.";
pub const ATTACHMENT_RECEIVED: &str = "Dạ, em đã nhận được tệp anh/chị gửi ạ. Hiện em chỉ đọc được tin nhắn chữ, anh/chị mô tả giúp em nội dung cần hỗ trợ nhé. Nếu cần nhân viên xem tệp, anh/chị bấm “Gặp nhân viên” ạ.";
pub const FILE_WITH_WORDS: &str = "Dạ, em đã nhận được tin nhắn và tệp anh/chị gửi ạ. Trường hợp này cần nhân viên xem trực tiếp, anh/chị bấm “Gặp nhân viên” để nhân viên hỗ trợ mình nhé.";
pub const STICKER_RECEIVED: &str = "Dạ vâng ạ. Anh/chị cần em hỗ trợ gì thêm thì cứ nhắn em nhé.";
pub const CSAT_QUESTION: &str = "Dạ, yêu cầu của anh/chị đã được xử lý xong. Anh/chị đánh giá hỗ trợ hôm nay thế nào ạ? (1 là chưa hài lòng, 5 là rất hài lòng)";
pub const CSAT_THANKS: &str =
    "Dạ, em cảm ơn anh/chị đã đánh giá ạ! Anh/chị có góp ý gì thêm cho bên em không ạ?";
pub const CSAT_NO_COMMENT: &str = "Không, cảm ơn";
pub const CSAT_COMMENT_THANKS: &str = "Dạ, em đã ghi nhận góp ý của anh/chị và chuyển tới bộ phận liên quan. Em cảm ơn anh/chị nhiều ạ!";
pub const CSAT_DONE: &str =
    "Dạ vâng, em cảm ơn anh/chị ạ! Anh/chị cần hỗ trợ thêm gì cứ nhắn em nhé.";
// Said when an agent hands the conversation back, whether or not they wrote: it claims
// no help that may not have been given.
pub const HANDED_BACK: &str =
    "Dạ, em tiếp tục hỗ trợ anh/chị ạ. Anh/chị cần hỏi gì cứ nhắn em nhé.";

/// What the customer can honestly expect after a hand-off.
pub enum Wait {
    /// Inside working hours: the SLA of the ticket's priority and the queue ahead.
    Within { hours: u32, queue: i64 },
    /// Outside working hours: a call-back once the team is back, later today (before
    /// opening time) or tomorrow.
    AfterHours {
        open: String,
        close: String,
        today: bool,
    },
}

/// "08:00" → "8 giờ sáng", "13:30" → "13 giờ 30 chiều".
fn clock(hhmm: &str) -> String {
    let (h, m) = hhmm.split_once(':').unwrap_or((hhmm, "00"));
    let hour: u32 = h.parse().unwrap_or(8);
    let part = match hour {
        0..=10 => "sáng",
        11..=12 => "trưa",
        13..=17 => "chiều",
        _ => "tối",
    };
    match m {
        "00" => format!("{hour} giờ {part}"),
        m => format!("{hour} giờ {m} {part}"),
    }
}

/// Tells the customer the ticket code and what to expect.
pub fn ticket_notice(code: &str, wait: &Wait) -> String {
    match wait {
        Wait::Within { hours, queue } => {
            let ahead = if *queue > 0 {
                format!("Hiện có {queue} yêu cầu đang chờ, ")
            } else {
                String::new()
            };
            let within = if *hours <= 1 {
                "trong vòng 1 giờ".to_string()
            } else {
                format!("trong vòng {hours} giờ làm việc")
            };
            let lead = if ahead.is_empty() {
                "Nhân viên"
            } else {
                "nhân viên"
            };
            format!("Mã yêu cầu của anh/chị là {code}. {ahead}{lead} sẽ phản hồi {within} ạ.")
        }
        Wait::AfterHours { open, close, today } => {
            let when = format!("{} {}", clock(open), if *today { "nay" } else { "mai" });
            format!(
                "Mã yêu cầu của anh/chị là {code}. Hiện đã ngoài giờ làm việc ({open}–{close}), nhân viên sẽ phản hồi anh/chị từ {when} ạ."
            )
        }
    }
}

/// `375000` → `375.000đ`.
pub fn money(amount: i64) -> String {
    let digits = amount.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if amount < 0 {
        out.insert(0, '-');
    }
    out + "đ"
}

/// `2026-11-30` → `30/11/2026`.
pub fn date(iso: &str) -> String {
    let d: Vec<&str> = iso.get(..10).unwrap_or(iso).split('-').collect();
    match d.as_slice() {
        [y, m, day] => format!("{day}/{m}/{y}"),
        _ => iso.to_string(),
    }
}

/// Whether an order still on its way was due before `today` (the shop's date).
pub fn order_late(o: &Order, today: chrono::NaiveDate) -> bool {
    use crate::orders::OrderStatus::*;
    matches!(o.status, Pending | Confirmed | Packing | Shipping)
        && o.eta
            .as_deref()
            .and_then(|e| chrono::NaiveDate::parse_from_str(e.get(..10)?, "%Y-%m-%d").ok())
            .is_some_and(|day| day < today)
}

/// The status reply for a verified customer, on `today` (the date an estimate in
/// the past is read against: such an order is late, and the customer is told so).
/// A verified request to cancel an order that can still be stopped: a person takes it
/// (the ticket notice that follows says when).
pub fn cancel_requested(o: &Order) -> String {
    let shipping = if o.status == crate::orders::OrderStatus::Shipping {
        " Đơn đang trên đường giao nên có thể không hủy kịp, nhân viên sẽ kiểm tra và báo anh/chị cách xử lý ạ."
    } else {
        ""
    };
    format!(
        "Dạ, em đã ghi nhận yêu cầu hủy đơn hàng {} (đơn {}) và chuyển cho nhân viên xử lý ạ.{shipping} Nhân viên sẽ báo lại anh/chị khi hủy xong ạ.",
        o.code,
        o.status.vietnamese()
    )
}

/// Another order named in the same message, not placed with the phone just
/// verified (or not found: the two are never told apart).
pub fn other_order_unverified(code: &str) -> String {
    format!(
        "Dạ, với mã đơn {code}, em chưa xác minh được bằng số điện thoại này ạ. Nếu đơn đó đặt bằng số khác, anh/chị nhắn riêng mã đơn kèm số điện thoại đặt hàng giúp em nhé."
    )
}

pub fn other_order_unreachable(code: &str) -> String {
    format!(
        "Dạ, hệ thống tra cứu đơn hàng đang tạm thời gián đoạn nên em chưa kiểm tra được đơn {code} ạ. Anh/chị nhắn lại mã đơn này sau ít phút giúp em nhé."
    )
}

pub fn already_cancelled(o: &Order) -> String {
    format!(
        "Dạ, đơn hàng {} đã được hủy rồi ạ. Anh/chị cần em hỗ trợ thêm gì không ạ?",
        o.code
    )
}

/// A request to cancel or change an order that has arrived (or come back).
pub fn too_late(o: &Order, request: crate::bot::OrderRequest) -> String {
    let what = match request {
        crate::bot::OrderRequest::Cancel => "hủy",
        crate::bot::OrderRequest::Change => "thay đổi thông tin đơn",
    };
    format!(
        "Dạ, đơn hàng {} {} nên không {what} được nữa ạ. Nếu anh/chị muốn đổi hoặc trả hàng, anh/chị cứ nhắn em để được hướng dẫn nhé.",
        o.code,
        o.status.vietnamese()
    )
}

/// A verified request to change an order: a person takes it, and the customer's
/// next messages (the new address, phone…) go to that person.
pub fn change_requested(o: &Order) -> String {
    format!(
        "Dạ, em đã ghi nhận yêu cầu thay đổi đơn hàng {} (đơn {}) và chuyển cho nhân viên xử lý ạ. Anh/chị nhắn luôn thông tin mới (địa chỉ, số điện thoại, sản phẩm…) tại đây để nhân viên cập nhật giúp mình nhé.",
        o.code,
        o.status.vietnamese()
    )
}

pub fn order_details(o: &Order, today: chrono::NaiveDate) -> String {
    use crate::orders::OrderStatus::*;
    let moving = matches!(o.status, Shipping | Delivered);
    let ahead = matches!(o.status, Pending | Confirmed | Packing);
    let eta = o.eta.as_deref().filter(|_| o.status == Shipping || ahead);
    let late = eta.is_some() && order_late(o, today);
    // The status and when it arrives come first: a caller hears two sentences.
    let mut s = match eta {
        Some(e) if !late => format!(
            "Dạ, đơn hàng {} của anh/chị {}, dự kiến giao ngày {} ạ.",
            o.code,
            o.status.vietnamese(),
            date(e)
        ),
        _ => format!(
            "Dạ, đơn hàng {} của anh/chị {}.",
            o.code,
            o.status.vietnamese()
        ),
    };
    if let (Some(e), true) = (eta, late) {
        s.push_str(&format!(
            " Đơn dự kiến giao ngày {} nhưng đang chậm hơn dự kiến, em thành thật xin lỗi anh/chị ạ.",
            date(e)
        ));
    }
    match (&o.carrier, &o.tracking_code) {
        (Some(c), Some(t)) if moving => {
            s.push_str(&format!(" Đơn được giao qua {c}, mã vận đơn {t}."))
        }
        (Some(c), Some(t)) if ahead => {
            s.push_str(&format!(" Đơn sẽ được giao qua {c}, mã vận đơn {t}."))
        }
        (Some(c), None) if moving => s.push_str(&format!(" Đơn được giao qua {c}.")),
        (Some(c), None) if ahead => s.push_str(&format!(" Đơn sẽ được giao qua {c}.")),
        _ => {}
    }
    if !o.items.is_empty() {
        let items: Vec<String> = o
            .items
            .iter()
            .map(|i| format!("{} x {}", i.qty, i.name))
            .collect();
        s.push_str(&format!(" Sản phẩm: {}.", items.join(", ")));
    }
    if o.total > 0 {
        s.push_str(&format!(" Tổng tiền: {}.", money(o.total)));
    }
    if late {
        s.push_str(" Anh/chị cần nhân viên kiểm tra với đơn vị vận chuyển thì bấm “Gặp nhân viên” giúp em nhé.");
    } else if eta.is_none() {
        s.push_str(" Anh/chị cần hỗ trợ thêm gì về đơn này cứ nhắn em nhé ạ.");
    }
    s
}

/// The yes/no question of the voice recognition ladder.
pub fn voice_confirm(guess: &str) -> String {
    format!("Dạ, có phải anh/chị vừa nói: {guess}? Anh/chị trả lời có hoặc không giúp em ạ.")
}

/// The ticket code, as said before a transfer.
pub fn voice_ticket(code: &str) -> String {
    format!("Mã yêu cầu của anh/chị là {code}.")
}

// While a request for a person waits and no agent has answered yet.

/// A message the bot cannot answer itself, passed on to the team (the ticket notice
/// follows: its code and when a person answers).
pub const WAITING_PASSED_ON: &str = "Dạ, em đã chuyển tin nhắn của anh/chị tới nhân viên rồi ạ.";
/// How to take the request back, said with the acknowledgement.
pub const WAITING_HOW_TO_WITHDRAW: &str =
    "Nếu không cần gặp nhân viên nữa, anh/chị nhắn “hủy yêu cầu” giúp em nhé.";

/// Said after a knowledge-base answer given while the request waits.
pub fn waiting_note(code: &str) -> String {
    format!("Yêu cầu gặp nhân viên của anh/chị (mã {code}) vẫn đang chờ, nhân viên sẽ phản hồi tại đây ạ.")
}

/// The customer took back a request nobody had taken yet: closed, the bot goes on.
pub fn withdrawn(code: &str, reason: &str) -> String {
    let what = match reason {
        "cancel_request" => format!("Dạ vâng, em đã rút lại yêu cầu hủy đơn (mã {code}), đơn hàng của anh/chị vẫn giữ nguyên ạ."),
        "change_request" => format!("Dạ vâng, em đã rút lại yêu cầu thay đổi đơn (mã {code}), đơn hàng của anh/chị vẫn giữ nguyên như cũ ạ."),
        _ => format!("Dạ vâng, em đã hủy yêu cầu gặp nhân viên (mã {code}) ạ."),
    };
    format!("{what} Em tiếp tục hỗ trợ anh/chị, anh/chị cần hỏi gì cứ nhắn em nhé.")
}

/// The customer took back a request a staff member is already working on.
pub fn withdrawal_passed_on(code: &str) -> String {
    format!("Dạ, em đã báo nhân viên đang xử lý yêu cầu {code} là anh/chị không cần hỗ trợ nữa ạ. Nhân viên sẽ xác nhận lại với anh/chị tại đây nhé.")
}

/// Said when an agent hands the conversation back and the bot answers the question
/// the customer left waiting (the answer follows).
pub const HANDED_BACK_ANSWERING: &str = "Dạ, em tiếp tục hỗ trợ anh/chị ạ.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_notices() {
        let within = ticket_notice(
            "YCABC234",
            &Wait::Within {
                hours: 24,
                queue: 0,
            },
        );
        assert_eq!(within, "Mã yêu cầu của anh/chị là YCABC234. Nhân viên sẽ phản hồi trong vòng 24 giờ làm việc ạ.");
        let queued = ticket_notice("YCABC234", &Wait::Within { hours: 1, queue: 3 });
        assert_eq!(queued, "Mã yêu cầu của anh/chị là YCABC234. Hiện có 3 yêu cầu đang chờ, nhân viên sẽ phản hồi trong vòng 1 giờ ạ.");
        let late = |today| {
            ticket_notice(
                "YCABC234",
                &Wait::AfterHours {
                    open: "08:00".into(),
                    close: "21:00".into(),
                    today,
                },
            )
        };
        assert_eq!(late(true), "Mã yêu cầu của anh/chị là YCABC234. Hiện đã ngoài giờ làm việc (08:00–21:00), nhân viên sẽ phản hồi anh/chị từ 8 giờ sáng nay ạ.");
        assert!(late(false).ends_with("từ 8 giờ sáng mai ạ."));
        // No sentence of a hand-off promises an answer "in a moment" the notice may
        // contradict.
        for s in [HANDOFF_REQUESTED, HANDOFF_COMPLAINT, HANDOFF_FALLBACK] {
            assert!(!s.contains("giây lát") && !s.contains("sớm nhất"), "{s}");
        }
        assert_eq!(clock("13:30"), "13 giờ 30 chiều");
    }

    #[test]
    fn order_replies_read_naturally_and_say_when_late() {
        use crate::orders::{OrderItem, OrderStatus};
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let order = |status, eta: &str| Order {
            code: "DH240976".into(),
            status,
            carrier: Some("Viettel Post".into()),
            tracking_code: None,
            eta: Some(eta.into()),
            items: vec![OrderItem {
                name: "Áo sơ mi linen trắng".into(),
                qty: 1,
                price: 375000,
            }],
            total: 375000,
            customer_name: None,
            phone: None,
            email: None,
            created_at: None,
        };
        let packing = order_details(&order(OrderStatus::Packing, "2026-11-30"), today);
        assert_eq!(packing, "Dạ, đơn hàng DH240976 của anh/chị đang được đóng gói, dự kiến giao ngày 30/11/2026 ạ. Đơn sẽ được giao qua Viettel Post. Sản phẩm: 1 x Áo sơ mi linen trắng. Tổng tiền: 375.000đ.");
        let cancelled = order_details(&order(OrderStatus::Cancelled, "2026-11-30"), today);
        assert!(
            !cancelled.contains("Viettel") && !cancelled.contains("dự kiến"),
            "{cancelled}"
        );
        let late = order_details(&order(OrderStatus::Shipping, "2026-11-26"), today);
        assert!(
            late.contains("dự kiến giao ngày 26/11/2026 nhưng đang chậm hơn dự kiến"),
            "{late}"
        );
        let on_time = order_details(&order(OrderStatus::Shipping, "2026-11-28"), today);
        assert!(
            on_time.starts_with(
                "Dạ, đơn hàng DH240976 của anh/chị đang được giao, dự kiến giao ngày 28/11/2026 ạ."
            ),
            "{on_time}"
        );
        assert!(!on_time.contains("chậm"), "{on_time}");
    }

    #[test]
    fn money_and_dates() {
        for (v, want) in [
            (375000, "375.000đ"),
            (0, "0đ"),
            (1500, "1.500đ"),
            (12345678, "12.345.678đ"),
        ] {
            assert_eq!(money(v), want);
        }
        assert_eq!(date("2026-11-30"), "30/11/2026");
        assert_eq!(date("2026-11-26T10:00:00+07:00"), "26/11/2026");
    }
}

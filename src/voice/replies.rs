//! The sentences only the hotline says (the bot's own are in `bot::replies`): how a
//! call answers a hello, ends after a transfer, re-asks for the last digits of a
//! phone, and offers what a short spoken answer left out.

use super::speech;

/// A hello once the call has opened (the opening line already said who speaks).
pub const LISTENING: &str = "Dạ, em nghe đây ạ. Anh/chị cần em hỗ trợ gì ạ?";
/// A caller who takes leave while a person is on the way.
pub const GOODBYE_AFTER_TRANSFER: &str =
    "Dạ vâng, yêu cầu của anh/chị em đã chuyển cho nhân viên rồi ạ. Em chào anh/chị, chúc anh/chị một ngày vui vẻ ạ!";
/// Nothing heard while the call waits for a person.
pub const STILL_TRANSFERRING: &str =
    "Dạ, em đang chuyển máy cho nhân viên, anh/chị vui lòng giữ máy thêm một chút ạ.";
/// The way to a person when the spoken answer does not say it.
pub const OFFER_HUMAN: &str =
    "Anh/chị cần gặp nhân viên thì nói “gặp nhân viên” hoặc bấm phím 0 ạ.";
/// Both offers at once: the rest of the answer, or a person.
pub const OFFER_MORE_OR_HUMAN: &str = "Anh/chị muốn nghe tiếp thì nói “nghe tiếp”, cần gặp nhân viên thì nói “gặp nhân viên” hoặc bấm phím 0 ạ.";
/// The rest of a long answer, offered.
pub const OFFER_MORE: &str = "Anh/chị muốn nghe tiếp thì nói “nghe tiếp” ạ.";
/// "Nghe tiếp" with nothing left to read.
pub const NOTHING_MORE: &str =
    "Dạ, em đã đọc hết thông tin rồi ạ. Anh/chị cần em hỗ trợ gì thêm không ạ?";

/// How many list lines are still to read.
pub fn items_left(n: usize) -> String {
    format!("Dạ, còn {} mục nữa ạ.", speech::number(n as u64))
}

/// Too few or too many digits for the phone the bot asked for ("tám năm chín").
pub fn digits_short(heard: usize) -> String {
    format!(
        "Dạ, em mới nghe được {} số ạ. Anh/chị đọc giúp em đủ bốn số cuối, hoặc cả số điện thoại đặt hàng nhé.",
        speech::number(heard as u64)
    )
}

/// More digits than four and fewer than a whole phone number.
pub fn digits_between(heard: usize) -> String {
    format!(
        "Dạ, em nghe được {} số ạ. Anh/chị đọc giúp em đủ mười số điện thoại đặt hàng, hoặc chỉ bốn số cuối thôi nhé.",
        speech::number(heard as u64)
    )
}
